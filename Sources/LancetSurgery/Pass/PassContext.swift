import LancetIR
import LancetRuntime
import LancetTensor

/// Calibration statistics a block pass can ask for. They are sums over calibration tokens, so they can
/// be accumulated in chunks (and, later, all-reduced across processes).
public enum StatisticKey: Hashable, Sendable {
    /// `XᵀX` of a block value (the input of one or more linears, e.g. `attn_in`, `act`) over all
    /// calibration tokens; its diagonal gives the squared input-channel norms Wanda uses.
    case inputGram(value: String)
    /// Σ x_j² per input channel `j` of a block value over all calibration tokens: the squared channel
    /// norms alone, much cheaper than the Gram when a pass needs only those (Wanda).
    case inputSquares(value: String)
    /// Per weight, the mean over calibration windows of the squared gradient of ‖block(X)‖₂ (Wanda++'s
    /// regional gradient), for every parameter of the block.
    case regionalGradient
}

/// Calibration statistics of one block, computed on the block's current inputs.
public final class BlockStatistics: @unchecked Sendable {
    /// Calibration tokens the sums run over.
    public let tokens: Int
    var grams: [String: Tensor] = [:]
    var gradients: [String: Tensor] = [:]
    var squares: [String: [Double]] = [:]

    init(tokens: Int) { self.tokens = tokens }

    /// `XᵀX` of `value` summed over calibration tokens (`[features, features]`).
    public func gram(of value: String) throws -> Tensor {
        guard let g = grams[value] else { throw PipelineError.missingStatistic("input Gram of value '\(value)'") }
        return g
    }

    /// ‖X_j‖₂ of every input channel `j` of `value` over calibration tokens (from `.inputSquares` or, when
    /// only that was collected, the Gram's diagonal).
    public func inputNorms(of value: String) throws -> [Float] {
        if let s = squares[value] { return s.map { Float(max($0, 0).squareRoot()) } }
        guard grams[value] != nil else { throw PipelineError.missingStatistic("input channel norms of value '\(value)'") }
        let g = try gram(of: value)
        let n = g.shape[0]
        return g.withUnsafeBufferPointer { p in (0..<n).map { max(p[$0 * n + $0], 0).squareRoot() } }
    }

    /// The regional gradient statistic of parameter `name` (same shape as the parameter).
    public func regionalGradient(_ name: String) throws -> Tensor {
        guard let g = gradients[name] else { throw PipelineError.missingStatistic("regional gradient of '\(name)'") }
        return g
    }
}

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
}
