import LancetIR
import LancetRuntime
import LancetTensor

/// The calibration activations of one block: its inputs, and the dense block's outputs on them (the
/// teacher), as `[windows·length, hidden]` with `windows` sequences of `length` tokens.
public struct CalibrationActivations: Sendable {
    /// Block inputs.
    public var inputs: Tensor
    /// The dense (uncut) block's outputs on `inputs`: every window when a pass of the stage reads them
    /// (`BlockPass.readsDenseOutputs`) or the stage fits; otherwise only the first few windows' rows.
    public var teacher: Tensor
    /// Number of sequences.
    public var windows: Int
    /// Tokens per sequence.
    public var length: Int

    /// Rows of window range `range` of a stacked tensor.
    public func rows(_ t: Tensor, windows range: Range<Int>) -> Tensor {
        t.slicingRows((range.lowerBound * length)..<(range.upperBound * length))
    }

    /// The same windows cut to their first `tokens` tokens (inputs and teacher rows alike): a cheaper sample of
    /// the calibration set that is still exact, since a causal block's outputs on a window's first tokens depend only
    /// on those tokens. `tokens` at or above `length` gives the set itself.
    public func prefixes(tokens: Int) -> CalibrationActivations {
        precondition(tokens > 0, "prefixes: tokens must be positive, got \(tokens)")
        guard tokens < length else { return self }
        var cut = self
        cut.inputs = inputs.windowPrefixes(length: length, tokens: tokens)
        cut.teacher = teacher.windowPrefixes(length: length, tokens: tokens)
        cut.length = tokens
        return cut
    }
}

/// Everything a block pass sees while cutting block `blockIndex`.
public final class BlockPassContext: @unchecked Sendable {
    /// The block's index in the model.
    public let blockIndex: Int
    /// Number of blocks in the model.
    public let blockCount: Int
    /// What the recipe lets this pass cut.
    public let targets: TargetSelection
    /// Statistics requested by the stage's passes, on this block's current inputs.
    public let statistics: BlockStatistics
    /// The block's calibration inputs and the dense block's outputs on them.
    public let calibration: CalibrationActivations
    /// The run's seed, for passes that sample.
    public let seed: UInt64
    /// Model-wide facts gathered before the stage (e.g. per-block allocations), by key.
    public let modelFacts: [String: [Double]]
    /// The recipe's local-fitting settings, for passes that fit inside their own loop (Wanda++).
    public let fit: FitSpec
    /// Writes a progress or diagnostic line.
    public let log: @Sendable (String) -> Void

    init(blockIndex: Int, blockCount: Int, targets: TargetSelection, statistics: BlockStatistics, calibration: CalibrationActivations,
         seed: UInt64, modelFacts: [String: [Double]], fit: FitSpec, log: @escaping @Sendable (String) -> Void) {
        self.blockIndex = blockIndex
        self.blockCount = blockCount
        self.targets = targets
        self.statistics = statistics
        self.calibration = calibration
        self.seed = seed
        self.modelFacts = modelFacts
        self.fit = fit
        self.log = log
    }

    /// The selected dense linears of `block`.
    public func linears(in block: Block) -> [(node: Node, op: LinearOp)] { targets.linears(in: block, index: blockIndex) }

    /// Whether `block` has a dense SwiGLU MLP (`LlamaBlock.mlpNodes`, dense linears) whose three linears the targets all
    /// select: what the passes that replace the whole MLP (moefy, dynamic-ffn) convert.
    public func selectsWholeMLP(_ block: Block) -> Bool { targets.selectsWholeMLP(block, index: blockIndex) }
}
