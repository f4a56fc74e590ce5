import LancetTensor

extension AttentionOp {
    /// The VJP of causal attention, recomputing each tile's probabilities instead of storing them.
    ///
    /// Per tile: `dV += Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale`, `dQ = dS·K`,
    /// `dK += dSᵀ·Q`. Work is split by (sequence, KV head) so that the key and value gradients of a
    /// group are written by one worker only. Only calls without a KV cache can be differentiated.
    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        guard context.cache == nil else { throw OpShapeError("attention cannot be differentiated through a KV cache") }
        let (q, k, v, dOut) = (inputs[0], inputs[1], inputs[2], outputGradients[0])
        var dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        let d = headDimensions, group = heads / kvHeads
        let qWidth = heads * d, kvWidth = kvHeads * d, length = context.length
        let tile = Self.tileRows, scale = self.scale
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
        dOut.withUnsafeBufferPointer { gp in dq.withUnsafeMutableBufferPointer { dqp in
        dk.withUnsafeMutableBufferPointer { dkp in dv.withUnsafeMutableBufferPointer { dvp in
            let (qB, kB, vB, gB) = (qp.baseAddress!, kp.baseAddress!, vp.baseAddress!, gp.baseAddress!)
            let (dqB, dkB, dvB) = (dqp.baseAddress!, dkp.baseAddress!, dvp.baseAddress!)
            Self.inParallel(count: context.batch * kvHeads, scratch: 2 * tile * length) { item, scratch in
                let b = item / kvHeads, g = item % kvHeads
                let probabilities = scratch, dScores = scratch + tile * length
                let seqRow = b * length
                for h in (g * group)..<((g + 1) * group) {
                    for i0 in stride(from: 0, to: length, by: tile) {
                        let rows = min(tile, length - i0)
                        let keyStart = visibleKeys(query: i0, offset: 0).lowerBound, keyEnd = i0 + rows
                        let span = keyEnd - keyStart
                        let qTile = qB + (seqRow + i0) * qWidth + h * d
                        let gTile = gB + (seqRow + i0) * qWidth + h * d
                        let kRows = kB + (seqRow + keyStart) * kvWidth + g * d
                        let vRows = vB + (seqRow + keyStart) * kvWidth + g * d
                        // P = softmax(Q·Kᵀ·scale) on the visible keys
                        gemm(transA: .none, transB: .transpose, m: rows, n: span, k: d, alpha: scale, a: qTile, lda: qWidth,
                             b: kRows, ldb: kvWidth, beta: 0, c: probabilities, ldc: span)
                        for r in 0..<rows {
                            let visible = visibleKeys(query: i0 + r, offset: 0)
                            let row = probabilities + r * span
                            let lo = visible.lowerBound - keyStart, hi = visible.upperBound - keyStart
                            for j in 0..<lo { row[j] = 0 }
                            softmax(inPlace: row + lo, count: hi - lo)
                            for j in hi..<span { row[j] = 0 }
                        }
                        // dV[keys] += Pᵀ·dO
                        gemm(transA: .transpose, transB: .none, m: span, n: d, k: rows, alpha: 1, a: probabilities, lda: span,
                             b: gTile, ldb: qWidth, beta: 1, c: dvB + (seqRow + keyStart) * kvWidth + g * d, ldc: kvWidth)
                        // dP = dO·Vᵀ
                        gemm(transA: .none, transB: .transpose, m: rows, n: span, k: d, alpha: 1, a: gTile, lda: qWidth,
                             b: vRows, ldb: kvWidth, beta: 0, c: dScores, ldc: span)
                        // dS = P ⊙ (dP − Σ dP⊙P) · scale
                        for r in 0..<rows {
                            let p = probabilities + r * span, ds = dScores + r * span
                            var dot: Float = 0
                            for j in 0..<span { dot += p[j] * ds[j] }
                            for j in 0..<span { ds[j] = p[j] * (ds[j] - dot) * scale }
                        }
                        // dQ = dS·K ; dK[keys] += dSᵀ·Q
                        gemm(transA: .none, transB: .none, m: rows, n: d, k: span, alpha: 1, a: dScores, lda: span,
                             b: kRows, ldb: kvWidth, beta: 0, c: dqB + (seqRow + i0) * qWidth + h * d, ldc: qWidth)
                        gemm(transA: .transpose, transB: .none, m: span, n: d, k: rows, alpha: 1, a: dScores, lda: span,
                             b: qTile, ldb: qWidth, beta: 1, c: dkB + (seqRow + keyStart) * kvWidth + g * d, ldc: kvWidth)
                    }
                }
            }
        }}}}}}}
        return [dq, dk, dv]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        // Causal: on average half of the keys of a sequence are visible; tokens are assumed to form one sequence.
        let keys = Double(window.map { min($0, tokens) } ?? tokens) / 2
        return OpCost(flops: 4 * Double(tokens) * keys * Double(heads * headDimensions))
    }
}
