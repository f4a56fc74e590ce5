import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// Removal of blocks with span-fitted repair, shared by the collapse passes: each run of removed blocks i…j is
/// taken over by block j+1 (its span: original blocks i…j+1), a run at the end of the model by the block before it
/// (span i−1…end, merged with that block's own span when it has one); every survivor is fitted, with the recipe's
/// `fit:`, to its span's output on the hidden states that reach it in the cut model (earlier survivors fitted).
enum SpanRepair {
    /// One survivor and the span of original blocks (itself included) it stands for.
    struct Repair: Equatable {
        let survivor: Int
        let span: ClosedRange<Int>
    }

    /// What a removal and its repairs did.
    struct Outcome {
        /// Mean span error of the survivors before and after fitting.
        var errorBefore = 0.0, errorAfter = 0.0
        /// One line per repair.
        var notes: [String] = []
        /// Wall time of the fits.
        var seconds = 0.0
    }

    /// The repairs of removing `removed` (ascending, not every block) from `blockCount` blocks, in model order.
    static func repairs(removed: [Int], blockCount: Int) -> [Repair] {
        var runs: [ClosedRange<Int>] = []
        for i in removed {
            if let last = runs.last, last.upperBound + 1 == i { runs[runs.count - 1] = last.lowerBound...i } else { runs.append(i...i) }
        }
        var result: [Repair] = []
        for run in runs {
            if run.upperBound + 1 < blockCount {
                result.append(Repair(survivor: run.upperBound + 1, span: run.lowerBound...(run.upperBound + 1)))
            } else if let last = result.last, last.survivor == run.lowerBound - 1 {
                result[result.count - 1] = Repair(survivor: last.survivor, span: last.span.lowerBound...run.upperBound)
            } else {
                result.append(Repair(survivor: run.lowerBound - 1, span: (run.lowerBound - 1)...run.upperBound))
            }
        }
        return result
    }

    /// Removes `removed` from `model` and fits each survivor to its span (`context.original` is the teacher).
    static func removeAndRepair(_ removed: [Int], from model: inout Model, context: ModelPassContext) throws -> Outcome {
        let blockCount = model.blocks.count
        let kept = (0..<blockCount).filter { !removed.contains($0) }
        model.blocks = kept.map { model.blocks[$0] }
        var outcome = Outcome()
        var states = try context.hiddenStates(enteringBlock: 0, of: model)
        var position = 0
        let plan = repairs(removed: removed, blockCount: blockCount)
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
