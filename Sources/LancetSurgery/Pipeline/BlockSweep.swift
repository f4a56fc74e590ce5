import LancetIR
import LancetRuntime
import LancetTensor

/// Runs one block over all calibration windows, a few windows per call, optionally capturing named values
/// per call (for Gram accumulation), and measuring the output's relative error against a teacher.
struct BlockSweep {
    /// Windows per forward call (bigger gemms, bounded memory).
    let windowsPerCall: Int
    /// Tokens per window.
    let length: Int

    /// The block's outputs on `inputs` (`[windows·length, hidden]`); `visit` sees the captured values of
    /// each call with the window range it covered. With `outputWindows` only the outputs of (at least) the
    /// first that many windows are computed and returned; later calls run only what the captures need.
    func run(_ block: Block, index: Int, inputs: Tensor, capture: Set<String> = [], outputWindows: Int? = nil,
             visit: (Range<Int>, [String: Tensor]) throws -> Void = { _, _ in }) throws -> Tensor {
        let hidden = inputs.shape[1]
        let windows = inputs.shape[0] / length
        let kept = min(outputWindows ?? windows, windows)
        var out = Tensor(uninitializedShape: [kept * length, hidden])
        var w = 0
        while w < windows {
            let n = min(windowsPerCall, windows - w)
            let rows = (w * length)..<((w + n) * length)
            let context = ExecutionContext(batch: n, length: length)
            let result = try BlockExecutor.forward(block, index: index, input: inputs.slicingRows(rows), context: context, capture: capture,
                                                   computeOutput: w < kept)
            try visit(w..<(w + n), result.values)
            if w < kept {
                out.withUnsafeMutableBufferPointer { o in
                    result.output.withUnsafeBufferPointer { r in
                        let count = (min(w + n, kept) - w) * length * hidden
                        (o.baseAddress! + rows.lowerBound * hidden).update(from: r.baseAddress!, count: count)
                    }
                }
            }
            w += n
        }
        return out
    }

    /// Runs blocks `a` and `b` on the same windows, a few at a time, handing `visit` the captured values of
    /// both; returns `b`'s outputs.
    func runPaired(_ a: Block, _ b: Block, index: Int, inputs: Tensor, capture: Set<String>,
                   visit: ([String: Tensor], [String: Tensor]) throws -> Void) throws -> Tensor {
        try run(b, index: index, inputs: inputs, capture: capture) { range, bValues in
            let rows = (range.lowerBound * length)..<(range.upperBound * length)
            let context = ExecutionContext(batch: range.count, length: length)
            let aValues = try BlockExecutor.forward(a, index: index, input: inputs.slicingRows(rows), context: context, capture: capture).values
            try visit(aValues, bValues)
        }
    }
}
