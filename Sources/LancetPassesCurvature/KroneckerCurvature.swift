import LancetIR
import LancetTensor

/// One linear's damped K-FAC curvature and the Optimal Brain Surgeon costs and updates it gives in closed form
/// (The LLM Surgeon, §3): with F = G ⊗ A and F⁻¹ = G⁻¹ ⊗ A⁻¹ (each factor damped by `damping` times its mean
/// diagonal before inverting), removing a set Q of weights raises the loss by ΔL = ½ w_Qᵀ [F⁻¹]_QQ⁻¹ w_Q, and the
/// remaining weights move by Δθ = −F⁻¹ e_Q [F⁻¹]_QQ⁻¹ w_Q. The Kronecker structure makes the structured cases cheap:
///
///     row set R (output channels):   ΔL = ½ tr([G⁻¹]_RR⁻¹ W_R A W_Rᵀ)      ΔW = −G⁻¹_{:,R} [G⁻¹]_RR⁻¹ W_R
///     column set C (input channels): ΔL = ½ tr([A⁻¹]_CC⁻¹ W_Cᵀ G W_C)      ΔW = −W_{:,C} [A⁻¹]_CC⁻¹ A⁻¹_{C,:}
///     one element (i, j):            ΔL = ½ w_ij² / ([G⁻¹]_ii [A⁻¹]_jj)
///
/// Sets of elements are removed with their correlations inside chunks of at most `correlate` elements
/// (`removeElements`): the exact OBS solve within each chunk, the chunks in sequence on the updated weights.
public struct KroneckerCurvature: Sendable {
    /// The factors as measured.
    public let factors: KroneckerFactors
    /// G + λ_G I.
    public let g: Tensor
    /// A + λ_A I.
    public let a: Tensor
    /// (G + λ_G I)⁻¹, `[out, out]`.
    public let gInverse: Tensor
    /// (A + λ_A I)⁻¹, `[in, in]`.
    public let aInverse: Tensor

    /// The curvature of `factors`, each factor damped by `dampG`/`dampA` times its mean diagonal.
    public init(_ factors: KroneckerFactors, dampG: Double, dampA: Double) throws {
        self.factors = factors
        g = factors.g.ridged(damping: dampG)
        a = factors.a.ridged(damping: dampA)
        gInverse = try spdInverse(g)
        aInverse = try spdInverse(a)
    }

    /// ΔL of removing each row of `w` alone: ½ w_i A w_iᵀ / [G⁻¹]_ii.
    public func rowCosts(_ w: Tensor) -> [Double] {
        let wa = matmul(w, a)
        return (0..<w.shape[0]).map { i in 0.5 * Self.rowDot(wa, w, i) / Double(Self.diagonal(gInverse, i)) }
    }

    /// ΔL of removing each column of `w` alone: ½ w_jᵀ G w_j / [A⁻¹]_jj.
    public func columnCosts(_ w: Tensor) -> [Double] {
        let gw = matmul(g, w)
        let (rows, columns) = (w.shape[0], w.shape[1])
        var quadratic = [Double](repeating: 0, count: columns)
        gw.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { b in
                for i in 0..<rows { for j in 0..<columns { quadratic[j] += Double(a[i * columns + j]) * Double(b[i * columns + j]) } }
            }
        }
        return (0..<columns).map { j in 0.5 * quadratic[j] / Double(Self.diagonal(aInverse, j)) }
    }

    /// ΔL of removing the rows `rows` of `w` together: ½ tr([G⁻¹]_RR⁻¹ W_R A W_Rᵀ).
    public func rowSetCost(_ w: Tensor, rows: [Int]) throws -> Double {
        let wr = BlockSlicing.gather(w, rows: rows)
        let m = matmul(matmul(wr, a), wr, transposeB: true)
        return 0.5 * Self.trace(try solveSPD(BlockSlicing.gather(gInverse, rows: rows, columns: rows), m))
    }

    /// ΔL of removing the columns `columns` of `w` together: ½ tr([A⁻¹]_CC⁻¹ W_Cᵀ G W_C).
    public func columnSetCost(_ w: Tensor, columns: [Int]) throws -> Double {
        let wc = BlockSlicing.gather(w, columns: columns)
        let m = matmul(wc, matmul(g, wc), transposeA: true)
        return 0.5 * Self.trace(try solveSPD(BlockSlicing.gather(aInverse, rows: columns, columns: columns), m))
    }

    /// `w` after the correlated OBS update for removing rows `rows` (those rows come out zero): W − G⁻¹_{:,R} [G⁻¹]_RR⁻¹ W_R.
    public func removingRows(_ w: Tensor, rows: [Int]) throws -> Tensor {
        guard !rows.isEmpty else { return w }
        let lambda = try solveSPD(BlockSlicing.gather(gInverse, rows: rows, columns: rows), BlockSlicing.gather(w, rows: rows))
        var out = w
        out.add(matmul(BlockSlicing.gather(gInverse, columns: rows), lambda), scale: -1)
        Self.zero(&out, rows: rows)
        return out
    }

    /// `w` after the correlated OBS update for removing columns `columns` (they come out zero): W − W_{:,C} [A⁻¹]_CC⁻¹ A⁻¹_{C,:}.
    public func removingColumns(_ w: Tensor, columns: [Int]) throws -> Tensor {
        guard !columns.isEmpty else { return w }
        let lambda = try solveSPD(BlockSlicing.gather(aInverse, rows: columns, columns: columns), BlockSlicing.gather(aInverse, rows: columns))
        var out = w
        out.add(matmul(BlockSlicing.gather(w, columns: columns), lambda), scale: -1)
        Self.zero(&out, columns: columns)
        return out
    }

    /// ΔL of removing each element of `w` alone: ½ w_ij² / ([G⁻¹]_ii [A⁻¹]_jj), `[out, in]`.
    public func elementCosts(_ w: Tensor) -> Tensor {
        let (rows, columns) = (w.shape[0], w.shape[1])
        let gd = (0..<rows).map { Self.diagonal(gInverse, $0) }, ad = (0..<columns).map { Self.diagonal(aInverse, $0) }
        var costs = Tensor(zeros: w.shape)
        costs.withUnsafeMutableBufferPointer { c in
            w.withUnsafeBufferPointer { p in
                for i in 0..<rows { for j in 0..<columns { let x = p[i * columns + j]; c[i * columns + j] = 0.5 * x * x / (gd[i] * ad[j]) } }
            }
        }
        return costs
    }

    /// Removes the elements `mask` drops (`keep == 0`) from `w` with correlated OBS updates: the pruned elements,
    /// row by row, are cut into chunks of at most `correlate`; for each chunk Q (on the weights the earlier chunks
    /// updated) λ = [G⁻¹_{r_k r_l} A⁻¹_{c_k c_l}]⁻¹ w_Q and W −= G⁻¹_{:,rows(Q)} Λ A⁻¹, Λ holding λ at Q's positions.
    /// Every dropped element comes out exactly zero. `correlate` 1 is the independent (per-element) update.
    public func removeElements(_ w: inout Tensor, mask: Mask, correlate: Int) throws {
        let (rows, columns) = (w.shape[0], w.shape[1])
        precondition(mask.shape == w.shape, "removeElements: mask \(mask.shape) for weight \(w.shape)")
        for chunk in Self.chunks(mask: mask, rows: rows, columns: columns, limit: max(1, correlate)) {
            let n = chunk.count
            var c = Tensor(zeros: [n, n]), wq = Tensor(zeros: [n])
            gInverse.withUnsafeBufferPointer { g in
                aInverse.withUnsafeBufferPointer { a in
                    c.withUnsafeMutableBufferPointer { cp in
                        for k in 0..<n {
                            for l in 0..<n {
                                cp[k * n + l] = g[chunk[k].row * rows + chunk[l].row] * a[chunk[k].column * columns + chunk[l].column]
                            }
                        }
                    }
                }
            }
            w.withUnsafeBufferPointer { p in wq.withUnsafeMutableBufferPointer { q in for k in 0..<n { q[k] = p[chunk[k].row * columns + chunk[k].column] } } }
            let lambda = try solveSPD(c.addingToDiagonal(c.ridgeLambda(damping: 1e-6)), wq)
            // Λ over the chunk's distinct rows, then W −= G⁻¹_{:,rows} (Λ A⁻¹).
            let chunkRows = Array(Set(chunk.map(\.row))).sorted()
            let position = Dictionary(uniqueKeysWithValues: chunkRows.enumerated().map { ($1, $0) })
            var big = Tensor(zeros: [chunkRows.count, columns])
            big.withUnsafeMutableBufferPointer { b in
                lambda.withUnsafeBufferPointer { l in for k in 0..<n { b[position[chunk[k].row]! * columns + chunk[k].column] += l[k] } }
            }
            w.add(matmul(BlockSlicing.gather(gInverse, columns: chunkRows), matmul(big, aInverse)), scale: -1)
        }
        mask.apply(to: &w)
    }

    /// The dropped positions of `mask`, row by row, cut into chunks of at most `limit` (a row with more is split).
    static func chunks(mask: Mask, rows: Int, columns: Int, limit: Int) -> [[(row: Int, column: Int)]] {
        var result: [[(row: Int, column: Int)]] = [], current: [(row: Int, column: Int)] = []
        for i in 0..<rows {
            let dropped = (0..<columns).filter { mask.keep[i * columns + $0] == 0 }.map { (row: i, column: $0) }
            if current.count + dropped.count > limit, !current.isEmpty {
                result.append(current)
                current = []
            }
            var rest = dropped[...]
            while current.count + rest.count > limit {
                let take = limit - current.count
                result.append(current + rest.prefix(take))
                current = []
                rest = rest.dropFirst(take)
            }
            current += rest
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    static func diagonal(_ t: Tensor, _ i: Int) -> Float { t.withUnsafeBufferPointer { $0[i * t.shape[1] + i] } }

    static func trace(_ t: Tensor) -> Double { (0..<t.shape[0]).reduce(0) { $0 + Double(diagonal(t, $1)) } }

    static func rowDot(_ a: Tensor, _ b: Tensor, _ i: Int) -> Double {
        let n = a.shape[1]
        return a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in (0..<n).reduce(0.0) { $0 + Double(p[i * n + $1]) * Double(q[i * n + $1]) } } }
    }

    static func zero(_ w: inout Tensor, rows: [Int] = [], columns: [Int] = []) {
        let (m, n) = (w.shape[0], w.shape[1])
        w.withUnsafeMutableBufferPointer { p in
            for i in rows { for j in 0..<n { p[i * n + j] = 0 } }
            for j in columns { for i in 0..<m { p[i * n + j] = 0 } }
        }
    }
}
