/// Which surviving block takes over each run of removed blocks, and the span of original blocks (itself included)
/// it then stands for: what a removal or collapse fits with a span teacher (`ModelPassContext.spanOutputs`, `fit`).
///
/// Each run of removed blocks i…j is taken over by block j + 1 (span i…j+1); a run at the end of the model by the
/// block before it (span i−1…end), merged with that block's own span when it already takes over a run before it.
public struct SpanRepair: Sendable, Equatable {
    /// The surviving block's index in the original model.
    public let survivor: Int
    /// The original blocks its output must reproduce.
    public let span: ClosedRange<Int>

    /// A repair.
    public init(survivor: Int, span: ClosedRange<Int>) {
        self.survivor = survivor
        self.span = span
    }

    /// The repairs of removing `removed` (ascending, not every block) from `blockCount` blocks, in model order.
    public static func plan(removed: [Int], blockCount: Int) -> [SpanRepair] {
        var runs: [ClosedRange<Int>] = []
        for i in removed {
            if let last = runs.last, last.upperBound + 1 == i { runs[runs.count - 1] = last.lowerBound...i } else { runs.append(i...i) }
        }
        var result: [SpanRepair] = []
        for run in runs {
            if run.upperBound + 1 < blockCount {
                result.append(SpanRepair(survivor: run.upperBound + 1, span: run.lowerBound...(run.upperBound + 1)))
            } else if let last = result.last, last.survivor == run.lowerBound - 1 {
                result[result.count - 1] = SpanRepair(survivor: last.survivor, span: last.span.lowerBound...run.upperBound)
            } else {
                result.append(SpanRepair(survivor: run.lowerBound - 1, span: (run.lowerBound - 1)...run.upperBound))
            }
        }
        return result
    }
}
