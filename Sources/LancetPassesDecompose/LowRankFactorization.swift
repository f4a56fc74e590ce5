import LancetIR
import LancetTensor

/// How the input side of a weight is weighted before its singular value decomposition is truncated, so that the
/// truncation minimises an error on the layer's inputs instead of on the weight itself.
///
/// With a weighting S the truncation keeps the largest singular values of W·S and folds S⁻¹ back into the inner
/// factor: W ≈ U_r Σ_r V_rᵀ S⁻¹. The discarded energy Σ_{i>r} σᵢ² is then exactly ‖(W − W_r)·S‖²_F.
public enum InputWeighting: Sendable {
    /// Plain SVD: the weight's own spectrum (S = I).
    case none
    /// ASVD: one positive scale per input channel (S = diag(s)).
    case diagonal([Float])
    /// SVD-LLM's truncation-aware whitening: the lower Cholesky factor L of the inputs' Gram XᵀX = L·Lᵀ, so that
    /// ‖(W − W_r)·L‖²_F = ‖X·(W − W_r)ᵀ‖²_F, the output error on the calibration inputs.
    case whitening(Tensor)

    /// The whitening of a Gram `XᵀX`: its Cholesky factor after adding `damping` × its mean diagonal to the diagonal
    /// (more, tenfold at a time, when rounding leaves the damped Gram indefinite).
    public static func whitening(gram: Tensor, damping: Double) throws -> InputWeighting {
        var lambda = gram.ridgeLambda(damping: damping)
        for _ in 0..<8 {
            if let l = try? cholesky(gram.addingToDiagonal(lambda)) { return .whitening(l) }
            lambda *= 10
        }
        throw LinearAlgebraError.notPositiveDefinite(routine: "whitening (spotrf)", minorOrder: gram.shape[0])
    }

    /// `w·S`.
    func apply(to w: Tensor) -> Tensor {
        switch self {
        case .none: return w
        case let .diagonal(s): return scalingColumns(w, by: s)
        case let .whitening(l): return matmul(w, l)
        }
    }

    /// `m·S⁻¹`.
    func remove(from m: Tensor) -> Tensor {
        switch self {
        case .none: return m
        case let .diagonal(s): return scalingColumns(m, by: s.map { 1 / $0 })
        case let .whitening(l): return solveLowerTriangularRight(l, m)
        }
    }

    private func scalingColumns(_ m: Tensor, by s: [Float]) -> Tensor {
        var r = m
        let n = m.shape[1]
        precondition(s.count == n, "InputWeighting: \(s.count) scales for \(n) input channels")
        r.withUnsafeMutableBufferPointer { p in
            for i in 0..<(p.count / max(n, 1)) { for j in 0..<n { p[i * n + j] *= s[j] } }
        }
        return r
    }
}

/// A weight `W [out, in]` factorised as `B·A` with `A [rank, in]` (the inner factor) and `B [out, rank]` (the outer),
/// with the spectrum the truncation chose from.
public struct LowRankFactors: Sendable {
    /// The inner factor `[rank, in]`.
    public var a: Tensor
    /// The outer factor `[out, rank]`.
    public var b: Tensor
    /// Every singular value of the weighted weight W·S, descending (the kept ones first).
    public var spectrum: [Float]

    /// Factors made elsewhere (`b [out, rank]` after `a [rank, in]`), with the spectrum they were cut from, if any.
    public init(a: Tensor, b: Tensor, spectrum: [Float] = []) {
        precondition(a.rank == 2 && b.rank == 2 && b.shape[1] == a.shape[0], "LowRankFactors: \(b.shape) does not follow \(a.shape)")
        (self.a, self.b, self.spectrum) = (a, b, spectrum)
    }

    /// The rank kept.
    public var rank: Int { a.shape[0] }

    /// The weighted error the truncation leaves, Σ_{i≥rank} σᵢ², relative to the whole energy Σ σᵢ².
    public var relativeTruncationError: Double { LowRankFactors.relativeTail(spectrum, rank: rank) }

    /// Σ_{i≥rank} σᵢ² / Σ σᵢ² of a descending spectrum.
    public static func relativeTail(_ spectrum: [Float], rank: Int) -> Double {
        let total = spectrum.reduce(0.0) { $0 + Double($1) * Double($1) }
        guard total > 0 else { return 0 }
        return spectrum.dropFirst(rank).reduce(0.0) { $0 + Double($1) * Double($1) } / total
    }

    /// The truncated SVD of `weight` under `weighting` at `rank` (at most min(out, in)): the singular values are split
    /// evenly between the factors, B = U_r Σ_r^½ and A = Σ_r^½ V_rᵀ S⁻¹.
    public static func truncate(_ weight: Tensor, weighting: InputWeighting, rank: Int) throws -> LowRankFactors {
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        let r = min(max(rank, 0), min(out, inputs))
        let (u, s, vt) = try svd(weighting.apply(to: weight))
        let k = s.count
        let roots = s.prefix(r).map { $0.squareRoot() }
        let b = Tensor(shape: [out, r]) { p in
            u.withUnsafeBufferPointer { up in for i in 0..<out { for j in 0..<r { p[i * r + j] = up[i * k + j] * roots[j] } } }
        }
        let scaled = Tensor(shape: [r, inputs]) { p in
            vt.withUnsafeBufferPointer { vp in for i in 0..<r { for j in 0..<inputs { p[i * inputs + j] = vp[i * inputs + j] * roots[i] } } }
        }
        return LowRankFactors(a: weighting.remove(from: scaled), b: b, spectrum: s)
    }

    /// The spectrum alone (what a rank allocation compares), without forming factors.
    public static func spectrum(of weight: Tensor, weighting: InputWeighting) throws -> [Float] {
        try svd(weighting.apply(to: weight)).s
    }

    /// `B·A`, the dense weight the factors stand for.
    public var product: Tensor { matmul(b, a) }
}

extension Block {
    /// Replaces the dense linear node `name` by its low-rank form reading `<name>.a` and `<name>.b`: the weight and
    /// its mask go, the bias stays. The node's inputs and outputs are unchanged, so the graph stays valid.
    public mutating func factorise(linear name: String, into factors: LowRankFactors) {
        guard let index = nodeIndex(name), let op = nodes[index].op as? LinearOp, let weight = op.weight else {
            preconditionFailure("factorise: '\(name)' is not a dense linear")
        }
        var low = LinearOp(lowRankPrefix: name)
        low.bias = op.bias
        nodes[index].op = low
        parameters[weight] = nil
        masks[weight] = nil
        parameters[low.factors!.a] = factors.a
        parameters[low.factors!.b] = factors.b
    }
}
