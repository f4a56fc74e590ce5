import LancetIR
import LancetRuntime
import LancetTensor

/// Regional optimisation (Wanda++): a few Adam steps on every surviving weight of the block so that the cut
/// block reproduces the dense block's outputs on the same inputs. The loss of a step is the mean squared
/// error over a mini-batch of calibration windows; pruned weights (mask 0) stay exactly zero, and
/// parameters that are not weights of linears (norm scales) are left alone.
enum RegionalFit {
    /// Runs `spec.steps` Adam steps; returns the relative block-output error on the whole calibration set
    /// before and after (‖Y − Y_dense‖² / ‖Y_dense‖²).
    static func fit(_ block: inout Block, index: Int, calibration: CalibrationActivations, spec: FitSpec, seed: UInt64,
                    sweep: BlockSweep, errorBefore: Double?) throws -> (before: Double, after: Double, output: Tensor) {
        let before = try errorBefore ?? BlockSweep.relativeError(sweep.run(block, index: index, inputs: calibration.inputs), calibration.teacher)
        let trainable = block.nodes(of: LinearOp.self).flatMap { _, op in op.parameterNames.filter { !$0.hasSuffix(".bias") } }
        var adam = Adam(learningRate: Float(spec.learningRate))
        var g = SeededGenerator(seed: seed ^ UInt64(index &* 0x9E37_79B9))
        let length = calibration.length
        for _ in 0..<spec.steps {
            let picked = g.sampleIndices(min(spec.batch, calibration.windows), from: calibration.windows)
            let x = calibration.inputs.gatherWindows(picked, length: length)
            let teacher = calibration.teacher.gatherWindows(picked, length: length)
            let context = ExecutionContext(batch: picked.count, length: length)
            let forward = try BlockExecutor.forward(block, index: index, input: x, context: context, keepValues: true)
            let scale = 2 / Float(forward.output.count)
            let dy = Elementwise.zip(forward.output, teacher) { ($0 - $1) * scale }
            let grads = try BlockExecutor.backward(block, index: index, values: forward.values, outputGradient: dy, context: context)
            for name in trainable {
                guard var grad = grads.parameters[name] else { continue }
                if let mask = block.masks[name] { mask.apply(to: &grad) }
                adam.step(name, parameter: &block.parameters[name]!, gradient: grad)
                if let mask = block.masks[name] { mask.apply(to: &block.parameters[name]!) }
            }
        }
        let output = try sweep.run(block, index: index, inputs: calibration.inputs)
        return (before, BlockSweep.relativeError(output, calibration.teacher), output)
    }
}

/// Adam with bias correction, state per parameter name.
struct Adam {
    let learningRate: Float
    let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    private var m: [String: Tensor] = [:], v: [String: Tensor] = [:], t: [String: Int] = [:]

    init(learningRate: Float) { self.learningRate = learningRate }

    mutating func step(_ name: String, parameter: inout Tensor, gradient: Tensor) {
        if m[name] == nil {
            m[name] = Tensor(zeros: gradient.shape)
            v[name] = Tensor(zeros: gradient.shape)
        }
        let step = (t[name] ?? 0) + 1
        t[name] = step
        let c1 = 1 - Foundation_powf(beta1, Float(step)), c2 = 1 - Foundation_powf(beta2, Float(step))
        let (b1, b2, lr, eps) = (beta1, beta2, learningRate, epsilon)
        m[name]!.withUnsafeMutableBufferPointer { mp in
            v[name]!.withUnsafeMutableBufferPointer { vp in
                gradient.withUnsafeBufferPointer { gp in
                    parameter.withUnsafeMutableBufferPointer { p in
                        for i in 0..<p.count {
                            mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                            vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                            p[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }
}

@inline(__always) func Foundation_powf(_ a: Float, _ b: Float) -> Float { Float(Foundation_pow(Double(a), Double(b))) }

extension Tensor {
    /// The rows of the given windows (each `length` rows), stacked in order.
    func gatherWindows(_ windows: [Int], length: Int) -> Tensor {
        let c = shape[1]
        var out = Tensor(uninitializedShape: [windows.count * length, c])
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { src in
                for (i, w) in windows.enumerated() {
                    (o.baseAddress! + i * length * c).update(from: src.baseAddress! + w * length * c, count: length * c)
                }
            }
        }
        return out
    }
}
