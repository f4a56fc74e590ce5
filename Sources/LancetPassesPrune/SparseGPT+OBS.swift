import LancetIR
import LancetTensor

/// SparseGPT's solver (Frantar & Alistarh 2023) for one linear `W` (`[rows, cols]`) with input Gram
/// `H = XᵀX` (`[cols, cols]`): prunes columns left to right and, after each one, spreads the error it
/// leaves over the columns still to come (Optimal Brain Surgeon with a shared inverse Hessian):
///
///     H ← H + λI,  λ = damping · mean(diag H)     (dead inputs, H_jj = 0: H_jj = 1 and W[:, j] = 0)
///     U = chol(H⁻¹), upper (H⁻¹ = UᵀU)
///     for each column i:   q = W[:, i] with its pruned rows zeroed
///                          e = (W[:, i] − q) / U_ii
///                          W[:, i…] −= e · U[i, i…]
///
/// The updates are done lazily: inside a block of `blockSize` columns row by row (rows are independent,
/// so they run in parallel), and once per block for the columns to its right as one gemm
/// `W[:, i₂…] −= E · U[i₁..<i₂, i₂…]`. Which weights go: unstructured, the lowest `W²/U_ii²` over each
/// column block pooled across rows (`sparsity` of each block, exactly `⌊rows·count·sparsity⌋` weights;
/// the reference's `≤ threshold` may take ties beyond that); N:M, the lowest `M − N` of `W²/U_ii²` in each
/// row's group of M columns, chosen when the solver reaches the group (on the updated weights).
enum SparseGPTSolver {
    /// The pruned and updated weight with its mask, and the layer reconstruction error
    /// ‖(W − W₀)X‖² / ‖W₀X‖² (through `H`) of the same mask without the update and with it.
    struct Result {
        var weight: Tensor
        var mask: Mask
        var errorMaskOnly: Double
        var error: Double
    }

    /// Prunes `weight` under `pattern` with column blocks of `blockSize`.
    static func prune(weight: Tensor, gram: Tensor, pattern: SparsityPattern, blockSize: Int, damping: Double) throws -> Result {
        let (rows, cols) = (weight.shape[0], weight.shape[1])
        precondition(gram.shape == [cols, cols], "SparseGPT: Gram \(gram.shape) for weight \(weight.shape)")
        var (w, u) = try prepare(weight: weight, gram: gram, damping: damping)
        var keep = [UInt8](repeating: 1, count: rows * cols)
        var err = [Float](repeating: 0, count: rows * blockSize)          // E [rows, count], row stride blockSize
        for i1 in stride(from: 0, to: cols, by: blockSize) {
            let i2 = min(i1 + blockSize, cols), count = i2 - i1
            if case let .unstructured(sparsity, _) = pattern {
                chooseBlockMask(w, u, columns: i1..<i2, sparsity: sparsity, keep: &keep)
            }
            // Inside the block: row r's columns i1..<i2 in order; rows in parallel. Then to the right of the
            // block: W[:, i2…] −= E · U[i1..<i2, i2…] (one gemm, outside the parallel region).
            w.withUnsafeMutableBufferPointer { wp in
                u.withUnsafeBufferPointer { up in
                    keep.withUnsafeMutableBufferPointer { kp in
                        err.withUnsafeMutableBufferPointer { ep in
                            let (wb, ub, kb, eb) = (wp.baseAddress!, up.baseAddress!, kp.baseAddress!, ep.baseAddress!)
                            parallelFor(0..<rows, minimumChunkSize: 16) { range in
                                for r in range {
                                    solveRow(wb + r * cols, kb + r * cols, eb + r * blockSize, u: ub, cols: cols, columns: i1..<i2, pattern: pattern)
                                }
                            }
                            if i2 < cols {
                                gemm(transA: .none, transB: .none, m: rows, n: cols - i2, k: count, alpha: -1,
                                     a: eb, lda: blockSize, b: ub + i1 * cols + i2, ldb: cols, beta: 1, c: wb + i2, ldc: cols)
                            }
                        }
                    }
                }
            }
        }
        let mask = Mask(shape: weight.shape, keep: keep)
        mask.apply(to: &w)
        var maskedOnly = weight
        mask.apply(to: &maskedOnly)
        return Result(weight: w, mask: mask, errorMaskOnly: reconstructionError(maskedOnly, weight, gram),
                      error: reconstructionError(w, weight, gram))
    }

    /// The working weight (dead columns zeroed) and the upper Cholesky factor of the damped inverse Gram.
    static func prepare(weight: Tensor, gram: Tensor, damping: Double) throws -> (w: Tensor, u: Tensor) {
        let (rows, cols) = (weight.shape[0], weight.shape[1])
        var h = gram, w = weight
        h.withUnsafeMutableBufferPointer { hp in
            w.withUnsafeMutableBufferPointer { wp in
                for j in 0..<cols where hp[j * cols + j] == 0 {
                    hp[j * cols + j] = 1
                    for r in 0..<rows { wp[r * cols + j] = 0 }
                }
            }
            var trace = 0.0
            for j in 0..<cols { trace += Double(hp[j * cols + j]) }
            let lambda = Float(damping * trace / Double(max(cols, 1)))
            for j in 0..<cols { hp[j * cols + j] += lambda }
        }
        let u = try cholesky(try spdInverse(h), upper: true)
        return (w, u)
    }

    /// Unstructured: marks pruned the `⌊rows·count·sparsity⌋` weights of lowest `W²/U_jj²` in `columns`
    /// (ties: lower index first).
    static func chooseBlockMask(_ w: Tensor, _ u: Tensor, columns: Range<Int>, sparsity: Double, keep: inout [UInt8]) {
        let (rows, cols) = (w.shape[0], w.shape[1]), count = columns.count
        let k = Int(Double(rows * count) * sparsity)
        guard k > 0 else { return }
        var scores = [Float](repeating: 0, count: rows * count)
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeBufferPointer { up in
                for r in 0..<rows {
                    for (c, j) in columns.enumerated() {
                        let d = up[j * cols + j]
                        scores[r * count + c] = wp[r * cols + j] * wp[r * cols + j] / (d * d)
                    }
                }
            }
        }
        scores.withUnsafeBufferPointer { sp in
            LowestSelection.mark(sp.baseAddress!, count: rows * count, k: k) { e in
                keep[(e / count) * cols + columns.lowerBound + e % count] = 0
            }
        }
    }

    /// One row through one column block: prunes column by column (choosing N:M groups on arrival) and
    /// propagates each error to the block's later columns; records the scaled errors in `err`.
    static func solveRow(_ w: UnsafeMutablePointer<Float>, _ keep: UnsafeMutablePointer<UInt8>, _ err: UnsafeMutablePointer<Float>,
                         u: UnsafePointer<Float>, cols: Int, columns: Range<Int>, pattern: SparsityPattern) {
        let (i1, i2) = (columns.lowerBound, columns.upperBound)
        for i in i1..<i2 {
            if case let .nOfM(n, m) = pattern, (i - i1) % m == 0 { chooseGroup(w, keep, u: u, cols: cols, start: i, n: n, m: m) }
            let d = u[i * cols + i]
            let q: Float = keep[i] != 0 ? w[i] : 0
            let e = (w[i] - q) / d
            err[i - i1] = e
            w[i] = q
            if e != 0 {
                let urow = u + i * cols
                for j in (i + 1)..<i2 { w[j] -= e * urow[j] }
            }
        }
    }

    /// N:M: marks pruned the `m − n` lowest `W²/U_jj²` of the row's columns `start..<start+m`.
    static func chooseGroup(_ w: UnsafeMutablePointer<Float>, _ keep: UnsafeMutablePointer<UInt8>, u: UnsafePointer<Float>,
                            cols: Int, start: Int, n: Int, m: Int) {
        var group = Array(start..<(start + m))
        func score(_ j: Int) -> Float { let d = u[j * cols + j]; return w[j] * w[j] / (d * d) }
        group.sort { score($0) != score($1) ? score($0) < score($1) : $0 < $1 }
        for j in group.prefix(m - n) { keep[j] = 0 }
    }

    /// ‖(W − W₀)X‖² / ‖W₀X‖² = tr(ΔHΔᵀ) / tr(W₀HW₀ᵀ) with Δ = W − W₀.
    static func reconstructionError(_ w: Tensor, _ w0: Tensor, _ h: Tensor) -> Double {
        let delta = Elementwise.zip(w, w0) { $0 - $1 }
        let den = quadraticForm(w0, h)
        return den > 0 ? quadraticForm(delta, h) / den : 0
    }

    /// Σ_r a_rᵀ H a_r for `a` `[rows, cols]`.
    static func quadraticForm(_ a: Tensor, _ h: Tensor) -> Double {
        let ah = matmul(a, h)
        return a.withUnsafeBufferPointer { ap in ah.withUnsafeBufferPointer { bp in
            var total = 0.0
            for i in 0..<ap.count { total += Double(ap[i]) * Double(bp[i]) }
            return total
        }}
    }

    /// Naive reference: the same algorithm without lazy batching (every column's error is applied to all
    /// later columns at once, one row at a time), for tests.
    static func referencePrune(weight: Tensor, gram: Tensor, pattern: SparsityPattern, blockSize: Int, damping: Double) throws -> (weight: Tensor, mask: Mask) {
        let (rows, cols) = (weight.shape[0], weight.shape[1])
        var (w, u) = try prepare(weight: weight, gram: gram, damping: damping)
        var keep = [UInt8](repeating: 1, count: rows * cols)
        for i in 0..<cols {
            if case let .unstructured(s, _) = pattern, i % blockSize == 0 {
                chooseBlockMask(w, u, columns: i..<min(i + blockSize, cols), sparsity: s, keep: &keep)
            }
            w.withUnsafeMutableBufferPointer { wp in
                u.withUnsafeBufferPointer { up in
                    keep.withUnsafeMutableBufferPointer { kp in
                        for r in 0..<rows {
                            let row = wp.baseAddress! + r * cols
                            if case let .nOfM(n, m) = pattern, i % m == 0 {
                                chooseGroup(row, kp.baseAddress! + r * cols, u: up.baseAddress!, cols: cols, start: i, n: n, m: m)
                            }
                            let q: Float = kp[r * cols + i] != 0 ? row[i] : 0
                            let e = (row[i] - q) / up[i * cols + i]
                            for j in i..<cols { row[j] -= e * up[i * cols + j] }
                            row[i] = q
                        }
                    }
                }
            }
        }
        return (w, Mask(shape: weight.shape, keep: keep))
    }
}
