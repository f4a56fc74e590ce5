import LancetIR
import LancetRuntime
import LancetTensor

/// Runs one block over all calibration windows, a few windows per call, optionally capturing named values
/// per call (for Gram accumulation), and measuring the output's relative error against a teacher.
///
/// Calibration tensors are `[windows·length, hidden]`. Only `run` keeps a whole output tensor (the
/// teacher); `error` and `runPaired` measure outputs without keeping them, and `advance` writes the outputs
/// over the inputs, so a sweep holds no more than the inputs, the teacher and one call's values.
///
/// A teacher may hold every window or only the first few (when no pass reads the dense outputs); errors are
/// measured over the windows it holds. Passes that measure a block on windows of their own use `error`.
public struct BlockSweep: Sendable {
    /// Windows per forward call (bigger gemms, bounded memory).
    public let windowsPerCall: Int
    /// Tokens per window.
    public let length: Int

    /// A sweep of `windowsPerCall` windows of `length` tokens per call.
    public init(windowsPerCall: Int, length: Int) {
        self.windowsPerCall = windowsPerCall
        self.length = length
    }

    /// The block's outputs on `inputs`; `visit` sees the captured values of each call with the window range it
    /// covered. With `outputWindows` only the outputs of (at least) the first that many windows are computed
    /// and returned; later calls run only what the captures need.
    func run(_ block: Block, index: Int, inputs: Tensor, capture: Set<String> = [], outputWindows: Int? = nil,
             visit: (Range<Int>, [String: Tensor]) throws -> Void = { _, _ in }) throws -> Tensor {
        let windows = inputs.shape[0] / length
        let kept = min(outputWindows ?? windows, windows)
        var out = Tensor(uninitializedShape: [kept * length, inputs.shape[1]])
        try forEachCall(block, index: index, windows: windows, input: { inputs.slicingRows(rows($0)) }, capture: capture,
                        computeOutput: { $0.lowerBound < kept }) { range, _, result in
            try visit(range, result.values)
            if range.lowerBound < kept { out.setRows(from: result.output, at: range.lowerBound * length, rowLimit: (kept - range.lowerBound) * length) }
        }
        return out
    }

    /// The relative error of the block's outputs on `inputs` against `teacher`; only the calls that cover the
    /// windows the teacher holds are run (whole calls, so each output equals the one `run` and `advance` compute:
    /// a call's batch size can change the last bits of its gemms).
    public func error(_ block: Block, index: Int, inputs: Tensor, teacher: Tensor) throws -> Double {
        var sum = RelativeErrorSum()
        let taught = teacher.shape[0] / length
        let covered = min(inputs.shape[0] / length, (taught + windowsPerCall - 1) / windowsPerCall * windowsPerCall)
        try forEachCall(block, index: index, windows: covered, input: { inputs.slicingRows(rows($0)) }, capture: [],
                        computeOutput: { _ in true }) { range, _, result in
            add(result.output, of: range, against: teacher, to: &sum)
        }
        return sum.value
    }

    /// Replaces `inputs` by the block's outputs on them, call by call (each call reads its windows before
    /// overwriting them, so no second activation tensor is needed); returns the relative error of the outputs
    /// against `teacher`. `inputs` is written in place only when its storage is not shared: drop other copies first.
    /// `given` may supply values of the block known for a call's windows (computed by the same calls).
    func advance(_ block: Block, index: Int, inputs: inout Tensor, teacher: Tensor,
                 given: (Range<Int>) -> [String: Tensor] = { _ in [:] }) throws -> Double {
        var sum = RelativeErrorSum()
        try advance(block, index: index, inputs: &inputs, given: given) { range, _, result in add(result.output, of: range, against: teacher, to: &sum) }
        return sum.value
    }

    /// Replaces `inputs` by the block's outputs on them, call by call, handing `visit` each call's windows, its input
    /// rows and its result (the outputs and the `capture`d values) before its outputs overwrite its inputs.
    func advance(_ block: Block, index: Int, inputs: inout Tensor, capture: Set<String> = [],
                 given: (Range<Int>) -> [String: Tensor] = { _ in [:] },
                 visit: (Range<Int>, Tensor, BlockExecutor.Result) throws -> Void) throws {
        try forEachCall(block, index: index, windows: inputs.shape[0] / length, input: { inputs.slicingRows(rows($0)) }, capture: capture,
                        computeOutput: { _ in true }, given: given) { range, input, result in
            try visit(range, input, result)
            inputs.setRows(from: result.output, at: range.lowerBound * length)
        }
    }

    /// `advance` resuming each call from the values `resume` kept for its windows (a fit's last run on the same
    /// calls: `BlockLeastSquares.outputResume`); calls it holds nothing for, or no `resume`, run from the inputs.
    func advance(_ block: Block, index: Int, inputs: inout Tensor, teacher: Tensor, resumingFrom resume: KeptValues?) throws -> Double {
        let names = resume?.names ?? []
        return try advance(block, index: index, inputs: &inputs, teacher: teacher, given: { range in resume?.values(names, windows: range) ?? [:] })
    }

    /// Runs blocks `a` and `b` on the same windows, a few at a time, handing `visit` each call's windows and the
    /// captured values of both; returns the relative error of `b`'s outputs against `teacher` (0 without `measureError`). `a` reads
    /// `aInputs` when given (the dense model's own inputs to the block, the same windows), else `inputs`. Only the
    /// nodes the captured values (and, for the error, `b`'s output) depend on run: capturing the input of a
    /// block's first linears costs a norm, not a block forward.
    ///
    /// `aCapture` names values captured from `a` only. `aValues` may supply `a`'s captured values of a call's windows
    /// (kept from an earlier run of `a` on the same inputs), and `bGiven` values of `b` known for them; `a` runs only
    /// for calls whose values are not supplied.
    func runPaired(_ a: Block, _ b: Block, index: Int, inputs: Tensor, aInputs: Tensor? = nil, teacher: Tensor, capture: Set<String>,
                   aCapture: Set<String> = [], measureError: Bool = true, aValues: (Range<Int>) -> [String: Tensor]? = { _ in nil },
                   bGiven: (Range<Int>) -> [String: Tensor] = { _ in [:] },
                   visit: (Range<Int>, [String: Tensor], [String: Tensor]) throws -> Void) throws -> Double {
        precondition(aInputs == nil || aInputs!.shape == inputs.shape, "runPaired: inputs \(inputs.shape) against \(aInputs!.shape)")
        let aInputs = aInputs ?? inputs
        var sum = RelativeErrorSum()
        let taught = measureError ? teacher.shape[0] / length : 0
        try forEachCall(b, index: index, windows: inputs.shape[0] / length, input: { inputs.slicingRows(rows($0)) }, capture: capture,
                        computeOutput: { $0.lowerBound < taught }, given: bGiven) { range, _, bResult in
            let aCaptured = try aValues(range) ?? forward(a, index: index, input: aInputs.slicingRows(rows(range)), windows: range,
                                                          capture: capture.union(aCapture), computeOutput: false).values
            try visit(range, aCaptured, bResult.values)
            if range.lowerBound < taught { add(bResult.output, of: range, against: teacher, to: &sum) }
        }
        return sum.value
    }

    /// The rows of window range `range`.
    func rows(_ range: Range<Int>) -> Range<Int> { (range.lowerBound * length)..<(range.upperBound * length) }

    /// Adds the error of one call's outputs (windows `range`) over the windows of it that `teacher` holds.
    private func add(_ output: Tensor, of range: Range<Int>, against teacher: Tensor, to sum: inout RelativeErrorSum) {
        let taught = teacher.shape[0] / length
        guard range.lowerBound < taught else { return }
        sum.add(output, teacher: teacher, rows: rows(range.lowerBound..<min(range.upperBound, taught)))
    }

    /// One forward call per `windowsPerCall` windows, in order; `input` gives each call's input rows, which `visit`
    /// receives with the call's result.
    private func forEachCall(_ block: Block, index: Int, windows: Int, input: (Range<Int>) -> Tensor, capture: Set<String>,
                             computeOutput: (Range<Int>) -> Bool, given: (Range<Int>) -> [String: Tensor] = { _ in [:] },
                             visit: (Range<Int>, Tensor, BlockExecutor.Result) throws -> Void) throws {
        var w = 0
        while w < windows {
            let range = w..<min(w + windowsPerCall, windows)
            let x = input(range)
            try visit(range, x, try forward(block, index: index, input: x, windows: range, capture: capture, computeOutput: computeOutput(range),
                                            given: given(range)))
            w = range.upperBound
        }
    }

    private func forward(_ block: Block, index: Int, input: Tensor, windows: Range<Int>, capture: Set<String>,
                         computeOutput: Bool, given: [String: Tensor] = [:]) throws -> BlockExecutor.Result {
        try BlockExecutor.forward(block, index: index, input: input, context: ExecutionContext(batch: windows.count, length: length),
                                  capture: capture, computeOutput: computeOutput, given: given)
    }
}
