import LancetIR
import LancetTensor

extension KroneckerCurvature {
    /// The 2:4 pairs a left-to-right Optimal Brain Surgeon sweep over the input columns chooses, on this curvature's
    /// damped input factor A (`surgeon`'s `pairs: sequential`).
    ///
    /// Within one output row the K-FAC curvature is A scaled by that row's [G⁻¹]_ii, so which two of a row's group
    /// of four cost least does not depend on G. Ranking each element by its own cost ½w²/([G⁻¹]_ii[A⁻¹]_jj) on the
    /// weights before the shot (`pairs: independent`, the paper's) ignores that removing the earlier pairs of the
    /// row moves the later weights. The sweep takes the row's groups in column order, drops the two lowest
    /// w_j²/U_jj² of each group on the weights as updated so far (U the upper Cholesky factor of A⁻¹), and spreads
    /// each dropped weight's error over the later columns, w_{j+1…} −= (w_j/U_jj)·U_{j,j+1…} — SparseGPT's N:M
    /// choice on A. Only the mask is kept; the caller removes it with the correlated update (`removeElements`).
    ///
    /// A group is chosen when `fresh` drops any of its elements; a group `existing` already drops keeps those
    /// elements (earlier shots' zeros); every other group keeps all four. Input widths must be multiples of 4.
    public func sequentialPairs(_ weight: Tensor, fresh: Mask, existing: Mask?) throws -> Mask {
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        precondition(columns % 4 == 0 && fresh.shape == weight.shape, "sequentialPairs: weight \(weight.shape), mask \(fresh.shape)")
        let u = try cholesky(aInverse, upper: true)
        var keep = [UInt8](repeating: 1, count: rows * columns)
        weight.withUnsafeBufferPointer { wp in
            u.withUnsafeBufferPointer { up in
                keep.withUnsafeMutableBufferPointer { kp in
                    let (wb, ub, kb) = (wp.baseAddress!, up.baseAddress!, kp.baseAddress!)
                    parallelFor(0..<rows, minimumChunkSize: 8) { range in
                        var w = [Float](repeating: 0, count: columns)
                        for r in range {
                            w.withUnsafeMutableBufferPointer { row in
                                row.baseAddress!.update(from: wb + r * columns, count: columns)
                                Self.sweepRow(row.baseAddress!, keep: kb + r * columns, u: ub, columns: columns,
                                              fresh: fresh.keep, existing: existing?.keep, offset: r * columns)
                            }
                        }
                    }
                }
            }
        }
        return Mask(shape: weight.shape, keep: keep)
    }

    /// One row of `sequentialPairs`: `w` the row's working copy, `keep` its mask (all ones on entry).
    static func sweepRow(_ w: UnsafeMutablePointer<Float>, keep: UnsafeMutablePointer<UInt8>, u: UnsafePointer<Float>, columns: Int,
                         fresh: [UInt8], existing: [UInt8]?, offset: Int) {
        func score(_ j: Int) -> Float { let d = u[j * columns + j]; return w[j] * w[j] / (d * d) }
        for g in stride(from: 0, to: columns, by: 4) {
            let group = g..<(g + 4)
            if let existing, group.contains(where: { existing[offset + $0] == 0 }) {
                for j in group where existing[offset + j] == 0 { keep[j] = 0 }
            } else if group.contains(where: { fresh[offset + $0] == 0 }) {
                let order = group.sorted { (score($0), $0) < (score($1), $1) }
                keep[order[0]] = 0
                keep[order[1]] = 0
            }
            for j in group where keep[j] == 0 {
                let e = w[j] / u[j * columns + j]
                w[j] = 0
                guard e != 0 else { continue }
                let urow = u + j * columns
                for k in (j + 1)..<columns { w[k] -= e * urow[k] }
            }
        }
    }
}
