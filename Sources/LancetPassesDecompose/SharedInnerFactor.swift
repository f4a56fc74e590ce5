import LancetTensor

/// A cross-layer decomposition of the same-role weights of several blocks, W_l ≈ B_l·A for l = 1…n, with the inner
/// factor A `[rank, in]` shared by every block and an outer factor B_l `[out, rank]` per block: a Tucker-2
/// decomposition of the 3-way tensor [n, out, in] whose input-mode factor is A and whose core slices are merged into
/// the outer factors, so A is stored once for n blocks (in the spirit of TRAWL's cross-layer tensor decompositions).
///
/// The objective is each block's output error on its own calibration inputs, relative to its output energy:
///
///     f(A, B) = Σ_l ‖X_l (W_l − B_l A)ᵀ‖² / ‖X_l W_lᵀ‖²,   with the Grams G_l = X_lᵀX_l.
///
/// **Initialisation (HOSVD of the input mode, whitened).** With one whitening for the group, the Cholesky factor L̄ of
/// the blocks' trace-normalised mean Gram, A₀ = V_rᵀ L̄⁻¹ where V_r are the top right singular vectors of the stacked
/// [w_l^½ W_l L̄] (the eigenvectors of Σ w_l L̄ᵀ W_lᵀ W_l L̄).
/// **Alternating least squares.** B-step, exact per block: B_l = W_l G_l Aᵀ (A G_l Aᵀ)⁻¹. A-step: the normal equations
/// Σ_l w_l B_lᵀB_l · A · G_l = Σ_l w_l B_lᵀ W_l G_l, a sum of Kronecker products, solved by conjugate gradients
/// warm-started at the current A. Every step lowers f (up to the damping), and the report carries f after each.
enum SharedInnerFactor {
    /// The decomposition and its objective (the mean relative output error) after the initialisation and after each
    /// ALS iteration.
    struct Result {
        var a: Tensor
        var b: [Tensor]
        var objective: [Double]
    }

    static func fit(weights: [Tensor], grams: [Tensor], rank: Int, damping: Double, iterations: Int, cgSteps: Int) throws -> Result {
        precondition(!weights.isEmpty && weights.count == grams.count, "SharedInnerFactor: \(weights.count) weights, \(grams.count) Grams")
        let inputs = weights[0].shape[1]
        let n = weights.count
        let ridged = grams.map { $0.ridged(damping: damping) }
        // Relative weights: 1 / ‖X_l W_lᵀ‖² = 1 / tr(W_l G_l W_lᵀ).
        let relative = zip(weights, grams).map { w, g in 1 / max(matmul(matmul(w, g), w, transposeB: true).diagonalSum, 1e-30) }
        // The group's whitening: the mean of the trace-normalised Grams.
        var mean = Tensor(zeros: [inputs, inputs])
        for g in grams { mean.add(g, scale: Float(Double(inputs) / max(g.diagonalSum, 1e-30) / Double(n))) }
        guard case let .whitening(l) = try InputWeighting.whitening(gram: mean, damping: damping) else { preconditionFailure() }
        var m = Tensor(zeros: [inputs, inputs])
        for (w, r) in zip(weights, relative) {
            let wl = matmul(w, l)
            m.add(matmul(wl, wl, transposeA: true), scale: Float(r))
        }
        let (_, vectors) = try symmetricEigen(m)                   // ascending; eigenvector j in column j
        let r = min(rank, inputs)
        let top = Tensor(shape: [r, inputs]) { p in
            vectors.withUnsafeBufferPointer { v in for i in 0..<r { for j in 0..<inputs { p[i * inputs + j] = v[j * inputs + (inputs - 1 - i)] } } }
        }
        var a = solveLowerTriangularRight(l, top)
        var b = try outerFactors(weights: weights, grams: grams, inner: a, damping: damping)
        var objective = [meanError(weights: weights, grams: grams, relative: relative, a: a, b: b)]
        for _ in 0..<iterations {
            a = innerStep(weights: weights, grams: ridged, relative: relative, outer: b, start: a, steps: cgSteps)
            b = try outerFactors(weights: weights, grams: grams, inner: a, damping: damping)
            objective.append(meanError(weights: weights, grams: grams, relative: relative, a: a, b: b))
        }
        return Result(a: a, b: b, objective: objective)
    }

    /// B_l = W_l G_l Aᵀ (A G_l Aᵀ + λI)⁻¹ for every block.
    static func outerFactors(weights: [Tensor], grams: [Tensor], inner a: Tensor, damping: Double) throws -> [Tensor] {
        try zip(weights, grams).map { w, g in
            let ag = matmul(a, g)                                     // A·G  [r, in]
            let lhs = matmul(ag, a, transposeB: true).ridged(damping: damping)
            return try solveSPD(lhs, matmul(ag, w, transposeB: true)).transposed()
        }
    }

    /// The A-step: conjugate gradients on Σ w_l B_lᵀB_l·A·G_l = Σ w_l B_lᵀ W_l G_l from `start`.
    static func innerStep(weights: [Tensor], grams: [Tensor], relative: [Double], outer b: [Tensor], start: Tensor, steps: Int) -> Tensor {
        let products = b.map { matmul($0, $0, transposeA: true) }    // B_lᵀB_l  [r, r]
        func operatorApplied(_ x: Tensor) -> Tensor {
            var sum = Tensor(zeros: x.shape)
            for l in products.indices { sum.add(matmul(matmul(products[l], x), grams[l]), scale: Float(relative[l])) }
            return sum
        }
        var rhs = Tensor(zeros: start.shape)
        for (l, (w, g)) in zip(weights, grams).enumerated() { rhs.add(matmul(b[l], matmul(w, g), transposeA: true), scale: Float(relative[l])) }
        var x = start
        var residual = rhs
        residual.add(operatorApplied(x), scale: -1)
        var direction = residual
        var rr = dot(residual, residual)
        let stop = 1e-10 * dot(rhs, rhs)
        for _ in 0..<steps where rr > stop {
            let ad = operatorApplied(direction)
            let alpha = rr / max(dot(direction, ad), 1e-300)
            x.add(direction, scale: Float(alpha))
            residual.add(ad, scale: Float(-alpha))
            let next = dot(residual, residual)
            var d = residual
            d.add(direction, scale: Float(next / rr))
            direction = d
            rr = next
        }
        return x
    }

    /// f(A, B) / n: the mean relative output error of the group.
    static func meanError(weights: [Tensor], grams: [Tensor], relative: [Double], a: Tensor, b: [Tensor]) -> Double {
        var total = 0.0
        for l in weights.indices {
            var e = weights[l]
            e.add(matmul(b[l], a), scale: -1)
            total += relative[l] * matmul(matmul(e, grams[l]), e, transposeB: true).diagonalSum
        }
        return total / Double(weights.count)
    }

    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in (0..<x.count).reduce(0.0) { $0 + Double(x[$1]) * Double(y[$1]) } } }
    }
}
