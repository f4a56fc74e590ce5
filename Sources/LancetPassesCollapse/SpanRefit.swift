import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// The span-fitted repair every collapse pass ends with: each block of the collapsed model that stands for a span
/// of original blocks (a survivor after a gap, a merged block, a replacement) is fitted with the recipe's `fit:` so
/// that its output reproduces the span's output (`ModelPassContext.spanOutputs`, the original blocks) on the hidden
/// states that reach it in the collapsed model, earlier stand-ins already fitted.
enum SpanRefit {
    /// A block of the collapsed model and the original blocks it stands for.
    struct StandIn: Equatable {
        /// Its index in the collapsed model.
        var index: Int
        /// The original blocks its output must reproduce.
        var span: ClosedRange<Int>
    }

    /// What the repairs did.
    struct Outcome {
        /// Mean span error of the stand-ins before and after fitting.
        var errorBefore = 0.0, errorAfter = 0.0
        /// One line per repair.
        var notes: [String] = []
        /// Wall time of the fits.
        var seconds = 0.0
    }

    /// Fits every stand-in of `model` (ascending indices) to its span; `context.original` is the teacher.
    static func fit(_ standIns: [StandIn], in model: inout Model, context: ModelPassContext) throws -> Outcome {
        var outcome = Outcome()
        guard !standIns.isEmpty else { return outcome }
        var states = try context.hiddenStates(enteringBlock: 0, of: model)
        var position = 0
        for (k, standIn) in standIns.enumerated() {
            precondition(standIn.index >= position, "SpanRefit: stand-ins out of order")
            try context.advance(&states, through: position..<standIn.index, of: model)
            position = standIn.index
            let teacher = try context.spanOutputs(standIn.span, inputs: states)
            var block = model.blocks[standIn.index]
            let fit = try context.fit(&block, index: standIn.index, inputs: states, teacher: teacher)
            model.blocks[standIn.index] = block
            outcome.errorBefore += fit.errorBefore / Double(standIns.count)
            outcome.errorAfter += fit.errorAfter / Double(standIns.count)
            outcome.seconds += fit.seconds
            outcome.notes.append(String(format: "block %d stands for original blocks %d…%d: span error %.3e → %.3e (fit %@)", standIn.index,
                                        standIn.span.lowerBound, standIn.span.upperBound, fit.errorBefore, fit.errorAfter,
                                        fit.method.rawValue as NSString))
            context.progress(k + 1, standIns.count, "span fits")
        }
        return outcome
    }
}

extension PassReport {
    /// Records a span refit: the fit method, the mean span errors before and after, the notes and the fit time.
    mutating func record(_ outcome: SpanRefit.Outcome, fit: FitSpec) {
        notes += outcome.notes
        self.fit = fit.method.rawValue
        errorAfterCut = outcome.errorBefore
        errorAfterFit = outcome.errorAfter
        fitSeconds = outcome.seconds
    }
}
