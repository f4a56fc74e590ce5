import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Wanda++'s regional gradient as a block analysis of the pruning family: per parameter, the mean over calibration
/// windows of (∂‖block(X_w)‖₂/∂θ)², one backward per window, read as its square root
/// (`BlockStatistics.regionalGradient(_:)`). It reads no forward values (it runs the block itself), so any change to
/// the block invalidates it.
public struct RegionalGradient: BlockAnalysis {
    /// The analysis.
    public init() {}
    public var id: String { "regional-gradient" }
    public func reads(in block: Block) -> Set<String> { [] }

    /// Σ over windows of the squared gradients of ‖block(X_w)‖₂, with the window count.
    public func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> NamedTensorSums {
        let windows = inputs.shape[0] / length
        var sums: [String: Tensor] = [:]
        for w in 0..<windows {
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
        return NamedTensorSums(sums, count: windows)
    }
}

extension BlockStatistics {
    /// √(mean over windows of the squared regional gradient) of parameter `name` (same shape as the parameter).
    public func regionalGradient(_ name: String) throws -> Tensor {
        let value = try self.value(of: RegionalGradient())
        guard let s = value.sums[name] else { throw PipelineError.missingStatistic("regional gradient of '\(name)'") }
        return Elementwise.map(s) { ($0 / Float(value.count)).squareRoot() }
    }
}
