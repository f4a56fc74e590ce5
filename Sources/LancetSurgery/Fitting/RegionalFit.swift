import LancetIR
import LancetRuntime
import LancetTensor

/// Regional optimisation (Wanda++): a few gradient steps on the weights of a block's linears so that the
/// cut block reproduces the dense block's outputs on the same inputs. The loss of a step is the squared
/// error to the teacher over a mini-batch of calibration windows.
///
/// `fit` is the pipeline's local-fitting service (Adam on every fittable parameter of the block — linear weights and
/// factors, routers and experts — pruned weights stay exactly zero, norm scales left alone). `optimize` is the step loop itself, for passes that
/// alternate cutting and optimising inside `apply` (Wanda++ prunes, optimises, and prunes again).
public enum RegionalFit {
    /// Runs `spec.steps` Adam steps; returns the relative block-output error on the whole calibration set
    /// before them (‖Y − Y_dense‖² / ‖Y_dense‖²). The pipeline measures the error after on the fitted block,
    /// as it computes the next block's inputs.
    static func fit(_ block: inout Block, index: Int, calibration: CalibrationActivations, spec: FitSpec, seed: UInt64,
                    sweep: BlockSweep) throws -> Double {
        let before = try sweep.error(block, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
        let trainable = trainableParameters(of: block)
        var optimizer = RegionalOptimizer.adam(learningRate: spec.learningRate)
        var g = SeededGenerator(seed: seed ^ UInt64(index &* 0x9E37_79B9))
        let batches = (0..<spec.steps).map { _ in g.sampleIndices(min(spec.batch, calibration.windows), from: calibration.windows) }
        try optimize(&block, index: index, calibration: calibration, batches: batches, parameters: trainable, keepMasked: true,
                     lossScale: .mean, optimizer: &optimizer)
        return before
    }

    /// The parameters `fit` optimises: what every op of the block declares fittable (`Op.fittableParameters`: the
    /// weights and low-rank factors of linears, a mixture's router and experts, a plugin op's own), in node order;
    /// biases and norm scales are left alone.
    public static func trainableParameters(of block: Block) -> [String] {
        block.nodes.flatMap { $0.op.fittableParameters }
    }

    /// How the squared error of a step is reduced before differentiating.
    public enum Reduction: Sendable {
        /// Mean over the batch's output elements (step sizes independent of the batch size for SGD).
        case mean
        /// Sum over the batch's output elements (Wanda++'s reference uses `MSELoss(reduction='sum')`).
        case sum
    }

    /// One optimiser step per entry of `batches` (each a list of calibration window indices): forward on
    /// those windows, squared error to the teacher, backward, update of `parameters` (names of block
    /// parameters). With `keepMasked`, gradients and weights are zeroed where the block's masks prune, so
    /// pruned weights stay exactly zero; without it, pruned weights may regrow (the caller re-prunes).
    /// Returns Σ‖Y − Y_dense‖² / Σ‖Y_dense‖² over the steps' windows, measured before each step's update.
    @discardableResult
    public static func optimize(_ block: inout Block, index: Int, calibration: CalibrationActivations, batches: [[Int]], parameters: [String],
                                keepMasked: Bool, lossScale: Reduction, optimizer: inout RegionalOptimizer) throws -> Double {
        let length = calibration.length
        var errorSum = 0.0, teacherSum = 0.0
        for picked in batches where !picked.isEmpty {
            let x = calibration.inputs.gatherWindows(picked, length: length)
            let teacher = calibration.teacher.gatherWindows(picked, length: length)
            let context = ExecutionContext(batch: picked.count, length: length)
            let forward = try BlockExecutor.forward(block, index: index, input: x, context: context, keepValues: true)
            let scale: Float = lossScale == .mean ? 2 / Float(forward.output.count) : 2
            let dy = Elementwise.zip(forward.output, teacher) { ($0 - $1) * scale }
            errorSum += dy.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) } / Double(scale * scale)
            teacherSum += teacher.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
            let grads = try BlockExecutor.backward(block, index: index, values: forward.values, outputGradient: dy, context: context)
            for name in parameters {
                guard var grad = grads.parameters[name] else { continue }
                let mask = keepMasked ? block.masks[name] : nil
                mask?.apply(to: &grad)
                optimizer.step(name, parameter: &block.parameters[name]!, gradient: grad)
                mask?.apply(to: &block.parameters[name]!)
            }
        }
        return teacherSum > 0 ? errorSum / teacherSum : errorSum
    }
}

/// A first-order optimiser with state per parameter name: Adam (with bias correction) or RMSprop
/// (PyTorch's defaults: smoothing 0.99, ε = 1e-8, no momentum), as Wanda++'s regional optimisation uses.
public struct RegionalOptimizer: Sendable {
    enum Kind: Sendable {
        case adam(beta1: Float, beta2: Float)
        case rmsprop(alpha: Float)
    }

    let kind: Kind
    let learningRate: Float
    let epsilon: Float = 1e-8
    private var m: [String: Tensor] = [:], v: [String: Tensor] = [:], t: [String: Int] = [:]

    /// Adam with β₁ = 0.9, β₂ = 0.999.
    public static func adam(learningRate: Double) -> RegionalOptimizer {
        RegionalOptimizer(kind: .adam(beta1: 0.9, beta2: 0.999), learningRate: Float(learningRate))
    }

    /// RMSprop: v ← α·v + (1 − α)·g², θ ← θ − lr · g / (√v + ε).
    public static func rmsprop(learningRate: Double, alpha: Double = 0.99) -> RegionalOptimizer {
        RegionalOptimizer(kind: .rmsprop(alpha: Float(alpha)), learningRate: Float(learningRate))
    }

    private init(kind: Kind, learningRate: Float) {
        self.kind = kind
        self.learningRate = learningRate
    }

    /// Updates `parameter` from `gradient`, advancing the state kept under `name`.
    public mutating func step(_ name: String, parameter: inout Tensor, gradient: Tensor) {
        if v[name] == nil {
            m[name] = Tensor(zeros: gradient.shape)
            v[name] = Tensor(zeros: gradient.shape)
        }
        let step = (t[name] ?? 0) + 1
        t[name] = step
        let (lr, eps) = (learningRate, epsilon)
        switch kind {
        case let .adam(b1, b2):
            let c1 = 1 - Foundation_powf(b1, Float(step)), c2 = 1 - Foundation_powf(b2, Float(step))
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
        case let .rmsprop(alpha):
            v[name]!.withUnsafeMutableBufferPointer { vp in
                gradient.withUnsafeBufferPointer { gp in
                    parameter.withUnsafeMutableBufferPointer { p in
                        for i in 0..<p.count {
                            vp[i] = alpha * vp[i] + (1 - alpha) * gp[i] * gp[i]
                            p[i] -= lr * gp[i] / (vp[i].squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }
}

@inline(__always) func Foundation_powf(_ a: Float, _ b: Float) -> Float { Float(Foundation_pow(Double(a), Double(b))) }

extension Tensor {
    /// The rows of the given windows (each `length` rows), stacked in order; with `tokens`, only each window's first
    /// `tokens` rows.
    public func gatherWindows(_ windows: [Int], length: Int, tokens: Int? = nil) -> Tensor {
        let c = shape[1], kept = tokens ?? length
        precondition(kept <= length, "gatherWindows: \(kept) of \(length) rows per window")
        var out = Tensor(uninitializedShape: [windows.count * kept, c])
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { src in
                for (i, w) in windows.enumerated() {
                    (o.baseAddress! + i * kept * c).update(from: src.baseAddress! + w * length * c, count: kept * c)
                }
            }
        }
        return out
    }

    /// The first `tokens` rows of every window of `length` rows, stacked in order.
    public func windowPrefixes(length: Int, tokens: Int) -> Tensor {
        precondition(shape[0] % length == 0, "windowPrefixes: \(shape) is not whole windows of \(length)")
        return gatherWindows(Array(0..<(shape[0] / length)), length: length, tokens: tokens)
    }
}
