import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// Removal of blocks with span-fitted repair, shared by the collapse passes: the survivors and their spans are
/// `SpanRepair.plan`'s, and every survivor is fitted, with the recipe's `fit:`, to its span's output on the hidden
/// states that reach it in the cut model (earlier survivors fitted).
enum BlockRemoval {
    /// What a removal and its repairs did.
    struct Outcome {
        /// Mean span error of the survivors before and after fitting.
        var errorBefore = 0.0, errorAfter = 0.0
        /// One line per repair.
        var notes: [String] = []
        /// Wall time of the fits.
        var seconds = 0.0
    }

    /// Removes `removed` from `model` and fits each survivor to its span (`context.original` is the teacher).
    static func removeAndRepair(_ removed: [Int], from model: inout Model, context: ModelPassContext) throws -> Outcome {
        let blockCount = model.blocks.count
        let kept = (0..<blockCount).filter { !removed.contains($0) }
        model.blocks = kept.map { model.blocks[$0] }
        var outcome = Outcome()
        var states = try context.hiddenStates(enteringBlock: 0, of: model)
        var position = 0
        let plan = SpanRepair.plan(removed: removed, blockCount: blockCount)
        for (k, repair) in plan.enumerated() {
            let index = kept.firstIndex(of: repair.survivor)!
            try context.advance(&states, through: position..<index, of: model)
            position = index
            let teacher = try context.spanOutputs(repair.span, inputs: states)
            var block = model.blocks[index]
            let fit = try context.fit(&block, index: index, inputs: states, teacher: teacher)
            model.blocks[index] = block
            outcome.errorBefore += fit.errorBefore / Double(plan.count)
            outcome.errorAfter += fit.errorAfter / Double(plan.count)
            outcome.seconds += fit.seconds
            outcome.notes.append(String(format: "block %d stands for blocks %d…%d: span error %.3e → %.3e (fit %@)", repair.survivor,
                                        repair.span.lowerBound, repair.span.upperBound, fit.errorBefore, fit.errorAfter,
                                        fit.method.rawValue as NSString))
            context.progress(k + 1, plan.count, "span fits")
        }
        return outcome
    }
}
