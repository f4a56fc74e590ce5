import LancetIR
import LancetSurgery

/// Removal of blocks with span-fitted repair: the survivors and their spans are `SpanRepair.plan`'s, each fitted by
/// `SpanRefit` to its span's output.
enum BlockRemoval {
    /// Removes `removed` (ascending) from `model` and fits each survivor to its span (`context.original` is the teacher).
    static func removeAndRepair(_ removed: [Int], from model: inout Model, context: ModelPassContext) throws -> SpanRefit.Outcome {
        let kept = (0..<model.blocks.count).filter { !removed.contains($0) }
        let plan = SpanRepair.plan(removed: removed, blockCount: model.blocks.count)
        model.blocks = kept.map { model.blocks[$0] }
        let standIns = plan.map { SpanRefit.StandIn(index: kept.firstIndex(of: $0.survivor)!, span: $0.span) }
        return try SpanRefit.fit(standIns, in: &model, context: context)
    }
}
