import LancetIR
import LancetSurgery
import LancetTensor

extension PruneStructuredPass {
    /// Importance of every removable unit of one block, from calibration statistics on the block's inputs.
    ///
    /// **Activation term.** For a set S of input columns of a linear W whose input X (`[tokens, in]`) has the
    /// Gram matrix G = XᵀX over the calibration tokens, the part of the linear's output that those columns
    /// produce is X_S W_Sᵀ, and its Frobenius norm is
    ///
    ///     A(S) = ‖X_S W_Sᵀ‖_F = √tr(W_S G_SS W_Sᵀ) = √(Σ_{i,j∈S} G_ij (W_SᵀW_S)_ij)
    ///
    /// - FFN channel c (W = `mlp.down`, X = `act`, S = {c}): A = ‖act_c‖₂ · ‖down[:, c]‖₂.
    /// - Query head h (W = `attn.o`, X = `attn`, S = h·d..<(h+1)·d): the norm of the head's share of
    ///   `attn_out`, from the head's d×d diagonal block of G (for d = 1 it is ‖attn_h‖ · ‖o[:, h]‖).
    /// - KV group k (kv-groups mode): S = the columns of all of the group's query heads, so cross terms
    ///   between the group's heads count.
    ///
    /// **Taylor term** (only when `taylor_weight` λ > 0). With ḡ_w the regional gradient of weight w (RMS
    /// over calibration windows of ∂‖block(X)‖₂/∂w), T(u) = Σ_{w∈u} |ḡ_w · w| over every weight and bias the
    /// unit owns (channel: row c of gate and up, column c of down; head: its rows of q and columns of o;
    /// group: its heads' q rows and o columns and the KV head's rows of k and v). Within each pool of
    /// units (channels, query heads, KV groups) the score is
    ///
    ///     score(u) = A(u) + λ · (Σ_pool A / Σ_pool T) · T(u)
    ///
    /// so λ = 1 gives the Taylor terms the same total as the activation terms of that pool.
    ///
    /// **Sub-layer importance**: ‖attn_out‖_F / ‖x‖_F and ‖mlp_out‖_F / ‖x‖_F over the calibration tokens,
    /// x the block input: A with S = every column, relative to the residual stream the sub-layer adds to.
    struct Importance {
        /// Score of each FFN channel (empty when the MLP is not cut).
        var channels: [Double] = []
        /// Score of each query head (empty when attention is not cut).
        var heads: [Double] = []
        /// Score of each KV group (kv-groups mode only).
        var groups: [Double] = []
        /// ‖attn_out‖_F / ‖x‖_F, when attention is cut.
        var attentionLayer: Double?
        /// ‖mlp_out‖_F / ‖x‖_F, when the MLP is cut.
        var mlpLayer: Double?

        /// The scores of `block`'s units for the sub-layers being cut.
        static func compute(block: Block, cutAttention: Bool, cutMLP: Bool, headMode: HeadMode, taylorWeight: Double,
                            context: BlockPassContext) throws -> Importance {
            let stats = context.statistics
            var result = Importance()
            let inputNorm = context.calibration.inputs.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }.squareRoot()
            let taylor = taylorWeight > 0 ? Taylor(block: block, statistics: stats) : nil

            if cutMLP {
                let down = block.parameters["mlp.down.weight"]!, gram = try stats.gram(of: "act")
                let width = down.shape[1]
                let columnNorms = down.columnSquaredNorms()
                var a = gram.withUnsafeBufferPointer { g in (0..<width).map { c in (max(Double(g[c * width + c]), 0) * columnNorms[c]).squareRoot() } }
                if let taylor {
                    let t = try (0..<width).map { c in
                        try taylor.rows("mlp.gate.weight", [c]) + taylor.rows("mlp.up.weight", [c]) + taylor.columns("mlp.down.weight", [c])
                    }
                    a = combine(a, t, weight: taylorWeight)
                }
                result.channels = a
                result.mlpLayer = inputNorm > 0 ? contribution(down, gram, columns: Array(0..<width)) / inputNorm : 0
            }

            if cutAttention, let sizes = LlamaBlock.attentionSizes(of: block) {
                let o = block.parameters["attn.o.weight"]!, gram = try stats.gram(of: "attn")
                let d = sizes.headDimensions, perGroup = sizes.heads / sizes.kvHeads
                func columns(_ heads: Range<Int>) -> [Int] { Array((heads.lowerBound * d)..<(heads.upperBound * d)) }
                var heads = (0..<sizes.heads).map { h in contribution(o, gram, columns: columns(h..<(h + 1))) }
                var groups = headMode == .kvGroups
                    ? (0..<sizes.kvHeads).map { k in contribution(o, gram, columns: columns((k * perGroup)..<((k + 1) * perGroup))) } : []
                if let taylor {
                    let bias = sizes.qkvBias
                    func headTerm(_ hs: Range<Int>) throws -> Double {
                        let rows = columns(hs)
                        return try taylor.rows("attn.q.weight", rows) + (bias ? taylor.rows("attn.q.bias", rows) : 0) + taylor.columns("attn.o.weight", rows)
                    }
                    heads = combine(heads, try (0..<sizes.heads).map { try headTerm($0..<($0 + 1)) }, weight: taylorWeight)
                    if headMode == .kvGroups {
                        let t = try (0..<sizes.kvHeads).map { k -> Double in
                            let kv = columns(k..<(k + 1))
                            var sum = try headTerm((k * perGroup)..<((k + 1) * perGroup))
                            for name in ["attn.k", "attn.v"] {
                                sum += try taylor.rows(name + ".weight", kv) + (bias ? taylor.rows(name + ".bias", kv) : 0)
                            }
                            return sum
                        }
                        groups = combine(groups, t, weight: taylorWeight)
                    }
                }
                result.heads = heads
                result.groups = groups
                result.attentionLayer = inputNorm > 0 ? contribution(o, gram, columns: Array(0..<o.shape[1])) / inputNorm : 0
            }
            return result
        }

        /// A(u) + λ (ΣA / ΣT) T(u); the activation terms alone when every Taylor term is zero.
        static func combine(_ a: [Double], _ t: [Double], weight: Double) -> [Double] {
            let sumT = t.reduce(0, +)
            guard sumT > 0 else { return a }
            let scale = weight * a.reduce(0, +) / sumT
            return zip(a, t).map { $0 + scale * $1 }
        }

        /// ‖X_S W_Sᵀ‖_F = √tr(W_S G_SS W_Sᵀ) for the input columns `columns` of `weight` (`[out, in]`), with
        /// `gram` = XᵀX (`[in, in]`).
        static func contribution(_ weight: Tensor, _ gram: Tensor, columns: [Int]) -> Double {
            let w = Slicing.gather(weight, columns: columns)                    // [out, k]
            let g = Slicing.gather(gram, rows: columns, columns: columns)       // [k, k]
            let wg = matmul(w, g)                                       // [out, k]
            let q = w.withUnsafeBufferPointer { a in wg.withUnsafeBufferPointer { b in (0..<a.count).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) } } }
            return max(q, 0).squareRoot()
        }

    }

    /// First-order Taylor sums Σ|ḡ · w| over rows or columns of a parameter, from the regional gradient.
    struct Taylor {
        let block: Block
        let statistics: BlockStatistics

        /// Σ over the rows `rows` of parameter `name` (a matrix, or a vector whose entries are its rows).
        func rows(_ name: String, _ rows: [Int]) throws -> Double {
            let (w, g) = (block.parameters[name]!, try statistics.regionalGradient(name))
            let cols = w.rank == 2 ? w.shape[1] : 1
            return w.withUnsafeBufferPointer { wp in g.withUnsafeBufferPointer { gp in
                rows.reduce(0.0) { sum, r in (0..<cols).reduce(sum) { $0 + abs(Double(wp[r * cols + $1]) * Double(gp[r * cols + $1])) } }
            }}
        }

        /// Σ over the columns `columns` of matrix parameter `name`.
        func columns(_ name: String, _ columns: [Int]) throws -> Double {
            let (w, g) = (block.parameters[name]!, try statistics.regionalGradient(name))
            let (n, cols) = (w.shape[0], w.shape[1])
            return w.withUnsafeBufferPointer { wp in g.withUnsafeBufferPointer { gp in
                (0..<n).reduce(0.0) { sum, r in columns.reduce(sum) { $0 + abs(Double(wp[r * cols + $1]) * Double(gp[r * cols + $1])) } }
            }}
        }
    }
}
