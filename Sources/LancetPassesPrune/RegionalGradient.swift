import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Wanda++'s regional gradient as a block analysis of the pruning family: per parameter, the mean over calibration
/// windows of (∂‖block(X_w)‖₂/∂θ)², one backward per window, read as its square root
/// (`BlockStatistics.regionalGradient(_:analysis:)`). It reads no forward values (it runs the block itself), so any
/// change to the block invalidates it.
public struct RegionalGradient: BlockAnalysis {
    /// How many calibration windows it averages over, drawn at random by `seed` (nil, or at least the block's window
    /// count: every window, in order).
    public let samples: Int?
    /// The seed of the drawing.
    public let seed: UInt64

    /// The analysis over `samples` windows drawn by `seed` (nil: every calibration window).
    public init(samples: Int? = nil, seed: UInt64 = 0) {
        self.samples = samples
        self.seed = seed
    }
    public var id: String { samples.map { "regional-gradient-\($0)-\(seed)" } ?? "regional-gradient" }
    public func reads(in block: Block) -> Set<String> { [] }

    /// The windows of `count` the analysis reads.
    public func windows(of count: Int) -> [Int] {
        guard let samples, samples < count else { return Array(0..<count) }
        var generator = SeededGenerator(seed: seed)
        return generator.sampleIndices(samples, from: count).sorted()
    }

    /// Σ over the windows of the squared gradients of ‖block(X_w)‖₂, with the window count.
    public func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> NamedTensorSums {
        let chosen = windows(of: inputs.shape[0] / length)
        var sums: [String: Tensor] = [:]
        for w in chosen {
            let x = inputs.slicingRows((w * length)..<((w + 1) * length))
            let context = ExecutionContext(batch: 1, length: length)
            let forward = try BlockExecutor.forward(block, index: index, input: x, context: context, keepValues: true)
            let norm = Float(forward.output.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }.squareRoot())
            let dy = Elementwise.map(forward.output) { $0 / max(norm, 1e-30) }
            let grads = try BlockExecutor.backward(block, index: index, values: forward.values, outputGradient: dy, context: context)
            for (name, g) in grads.parameters {
                let squared = Elementwise.map(g) { $0 * $0 }
                Linear.accumulate(&sums[name], squared)
            }
        }
        return NamedTensorSums(sums, count: chosen.count)
    }
}

extension BlockStatistics {
    /// √(mean over windows of the squared regional gradient) of parameter `name` (same shape as the parameter), from
    /// the analysis as requested (`RegionalGradient()`: every window).
    public func regionalGradient(_ name: String, analysis: RegionalGradient = RegionalGradient()) throws -> Tensor {
        let value = try self.value(of: analysis)
        guard let s = value.sums[name] else { throw PipelineError.missingStatistic("regional gradient of '\(name)'") }
        return Elementwise.map(s) { ($0 / Float(value.count)).squareRoot() }
    }
}
