import LancetTensor

/// `y = x·Wᵀ (+ b)`: a dense linear layer, or a low-rank one `y = (x·Aᵀ)·Bᵀ (+ b)`.
///
/// The dense form reads `<name>.weight` `[out, in]` (masked by the block's mask of the same name, whose
/// pruned entries the weight already holds as zeros). The low-rank form reads `<name>.a` `[rank, in]`
/// and `<name>.b` `[out, rank]` instead. `<name>.bias` `[out]` is optional in both.
public struct LinearOp: Op {
    public static let kind = "linear"
    /// The weight (dense form), or nil for the low-rank form.
    public var weight: String?
    /// The low-rank factors `(a, b)`, or nil for the dense form.
    public var factors: (a: String, b: String)?
    /// The bias, if any.
    public var bias: String?

    /// A dense linear reading `<prefix>.weight` (and `<prefix>.bias` if `hasBias`).
    public init(prefix: String, hasBias: Bool = false) {
        weight = prefix + ".weight"
        bias = hasBias ? prefix + ".bias" : nil
    }

    /// A low-rank linear reading `<prefix>.a` and `<prefix>.b`.
    public init(lowRankPrefix prefix: String, hasBias: Bool = false) {
        factors = (prefix + ".a", prefix + ".b")
        bias = hasBias ? prefix + ".bias" : nil
    }

    public var parameterNames: [String] {
        (weight.map { [$0] } ?? [factors!.a, factors!.b]) + (bias.map { [$0] } ?? [])
    }

    /// The weight, or both factors: the bias stays as it is.
    public var fittableParameters: [String] { weight.map { [$0] } ?? [factors!.a, factors!.b] }

    public var attributes: [String: OpAttribute] {
        var a: [String: OpAttribute] = [:]
        if let weight { a["weight"] = .string(weight) }
        if let factors { a["a"] = .string(factors.a); a["b"] = .string(factors.b) }
        if let bias { a["bias"] = .string(bias) }
        return a
    }

    public init(attributes a: [String: OpAttribute]) throws {
        weight = a["weight"]?.string
        if let fa = a["a"]?.string, let fb = a["b"]?.string { factors = (fa, fb) }
        bias = a["bias"]?.string
        guard (weight == nil) != (factors == nil) else { throw OpShapeError("linear needs either 'weight' or both 'a' and 'b'") }
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("linear takes 1 input, got \(inputs.count)") }
        let out: Int
        if let weight {
            let w = try parameters.require(weight)
            guard w.rank == 2, w.shape[1] == inputs[0] else {
                throw OpShapeError("weight '\(weight)' has shape \(w.shape), input has \(inputs[0]) features")
            }
            out = w.shape[0]
        } else {
            let (an, bn) = factors!
            let a = try parameters.require(an), b = try parameters.require(bn)
            guard a.rank == 2, b.rank == 2, a.shape[1] == inputs[0], b.shape[1] == a.shape[0] else {
                throw OpShapeError("factors '\(an)' \(a.shape) and '\(bn)' \(b.shape) do not chain from \(inputs[0]) input features")
            }
            out = b.shape[0]
        }
        if let bias {
            let b = try parameters.require(bias)
            guard b.shape == [out] else { throw OpShapeError("bias '\(bias)' has shape \(b.shape), expected [\(out)]") }
        }
        return [out]
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let x = inputs[0]
        var y: Tensor
        if let weight {
            y = Linear.apply(x, weight: try parameters.require(weight), half: context.halfWeights)
        } else {
            y = Linear.applyLowRank(x, a: try parameters.require(factors!.a), b: try parameters.require(factors!.b), half: context.halfWeights)
        }
        if let bias { Linear.addBias(&y, try parameters.require(bias)) }
        return [y]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        let x = inputs[0], dy = outputGradients[0]
        if let bias { Linear.accumulate(&parameterGradients[bias], Linear.columnSums(dy)) }
        if let weight {
            let w = try parameters.require(weight)
            Linear.accumulate(&parameterGradients[weight], Linear.weightGradient(dy, x))
            return [Linear.inputGradient(dy, weight: w)]
        }
        let a = try parameters.require(factors!.a), b = try parameters.require(factors!.b)
        let z = Linear.apply(x, weight: a)
        Linear.accumulate(&parameterGradients[factors!.b], Linear.weightGradient(dy, z))
        let dz = Linear.inputGradient(dy, weight: b)
        Linear.accumulate(&parameterGradients[factors!.a], Linear.weightGradient(dz, x))
        return [Linear.inputGradient(dz, weight: a)]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        let names = weight.map { [$0] } ?? [factors!.a, factors!.b]
        let elements = names.compactMap { parameters.parameter($0)?.count }.reduce(0, +)
        return OpCost(flops: 2 * Double(tokens) * Double(elements), parameterBytes: 4 * Double(elements))
    }
}

/// The matrix products of a linear layer, shared by the ops that contain linears (linear, moe).
public enum Linear {
    /// `x·Wᵀ`: `[t, in]·[out, in]ᵀ → [t, out]`. One row (a decoded token) goes through the bandwidth-bound
    /// `matrixVector`, more through sgemm.
    public static func apply(_ x: Tensor, weight w: Tensor) -> Tensor {
        precondition(x.shape[1] == w.shape[1], "Linear: input \(x.shape) against weight \(w.shape)")
        guard x.shape[0] == 1, w.count > 0 else { return matmul(x, w, transposeB: true) }
        var y = Tensor(uninitializedShape: [1, w.shape[0]])
        y.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in
            matrixVector(weight: wp.baseAddress!, rows: w.shape[0], columns: w.shape[1], x: xp.baseAddress!, y: yp.baseAddress!)
        }}}
        return y
    }

    /// `(x·Aᵀ)·Bᵀ`, a low-rank linear. One row (a decoded token) with 32-bit factors goes through
    /// `lowRankMatrixVector` (both products in one hand-off to the cores), the same sums as two `apply` calls.
    public static func applyLowRank(_ x: Tensor, a: Tensor, b: Tensor, half: HalfWeights?) -> Tensor {
        precondition(x.shape[1] == a.shape[1] && b.shape[1] == a.shape[0], "Linear: input \(x.shape) against factors \(a.shape), \(b.shape)")
        guard x.shape[0] == 1, a.count > 0, b.count > 0, half?.matrix(for: a) == nil, half?.matrix(for: b) == nil else {
            return apply(apply(x, weight: a, half: half), weight: b, half: half)
        }
        var z = [Float](repeating: 0, count: a.shape[0])
        var y = Tensor(uninitializedShape: [1, b.shape[0]])
        y.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { xp in a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in z.withUnsafeMutableBufferPointer { zp in
                lowRankMatrixVector(a: ap.baseAddress!, rank: a.shape[0], columns: a.shape[1], b: bp.baseAddress!, rows: b.shape[0],
                                    x: xp.baseAddress!, z: zp.baseAddress!, y: yp.baseAddress!)
            }}
        }}}
        return y
    }

    /// `down·(silu(gate·x) ⊙ up·x)` for one token `x` `[1, columns]` through a SwiGLU feed-forward of 32-bit weights
    /// (`gate`, `up` `[width, columns]`, `down` `[rows, width]`): `swiGLUMatrixVector`, the three products and the gate in
    /// one hand-off to the cores, the values of three `apply` calls and `swiglu` bit for bit.
    public static func applySwiGLU(_ x: Tensor, gate: Tensor, up: Tensor, down: Tensor) -> Tensor {
        precondition(x.shape == [1, gate.shape[1]] && up.shape == gate.shape && down.shape[1] == gate.shape[0],
                     "Linear: input \(x.shape) against SwiGLU weights \(gate.shape), \(up.shape), \(down.shape)")
        var y = Tensor(uninitializedShape: [1, down.shape[0]])
        y.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { xp in gate.withUnsafeBufferPointer { gp in
            up.withUnsafeBufferPointer { upp in down.withUnsafeBufferPointer { dp in
                swiGLUMatrixVector(gate: gp.baseAddress!, up: upp.baseAddress!, width: gate.shape[0], columns: gate.shape[1],
                                   down: dp.baseAddress!, rows: down.shape[0], x: xp.baseAddress!, y: yp.baseAddress!)
            }}
        }}}
        return y
    }

    /// `x·Wᵀ` by the 16-bit copy of `w` in `half` when there is one, else by `w`.
    public static func apply(_ x: Tensor, weight w: Tensor, half: HalfWeights?) -> Tensor {
        if let m = half?.matrix(for: w) { return m.multiply(x) }
        return apply(x, weight: w)
    }

    /// `dy·W`: the input gradient, `[t, out]·[out, in] → [t, in]`.
    public static func inputGradient(_ dy: Tensor, weight w: Tensor) -> Tensor { matmul(dy, w) }

    /// `dyᵀ·x`: the weight gradient, `[t, out]ᵀ·[t, in] → [out, in]`.
    public static func weightGradient(_ dy: Tensor, _ x: Tensor) -> Tensor { matmul(dy, x, transposeA: true) }

    /// Adds `b` to every row of `y`.
    public static func addBias(_ y: inout Tensor, _ b: Tensor) {
        let n = b.count
        y.withUnsafeMutableBufferPointer { yp in
            b.withUnsafeBufferPointer { bp in
                for r in 0..<(yp.count / n) { for j in 0..<n { yp[r * n + j] += bp[j] } }
            }
        }
    }

    /// Column sums of a matrix (the bias gradient).
    public static func columnSums(_ m: Tensor) -> Tensor {
        let (r, c) = (m.shape[0], m.shape[1])
        return Tensor(shape: [c]) { out in
            m.withUnsafeBufferPointer { p in for i in 0..<r { for j in 0..<c { out[j] += p[i * c + j] } } }
        }
    }

    /// `slot += g` (or `slot = g` when empty).
    public static func accumulate(_ slot: inout Tensor?, _ g: Tensor) {
        guard slot != nil else { slot = g; return }
        precondition(slot!.shape == g.shape, "gradient shapes \(slot!.shape) and \(g.shape)")
        slot!.withUnsafeMutableBufferPointer { sp in g.withUnsafeBufferPointer { gp in for i in 0..<sp.count { sp[i] += gp[i] } } }
    }
}
