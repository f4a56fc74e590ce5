import LancetIR
import LancetTensor

/// Which units of one block a choice keeps: KV groups, query heads within each group and FFN channels, ranked by the
/// architecture-search paper's importance (Shen et al., §3.3.2, after the OBS saliency): with X a linear's input
/// and H = 2XᵀX (damped by 1% of its mean diagonal),
///
///     Φ_ij = W_ij² / [H⁻¹]_jj,   a row's score Σ_j Φ_ij,   a column's Σ_i Φ_ij
///
/// - an FFN channel: its rows of `mlp.gate` and `mlp.up` and its column of `mlp.down`;
/// - a query head: its rows of `attn.q` and its columns of `attn.o`;
/// - a KV group: its query heads plus its KV head's rows of `attn.k` and `attn.v`.
///
/// A choice keeps the highest-scoring groups, in each the highest-scoring heads, and the highest-scoring channels —
/// the inherited weights of the paper's importance-initialised masks.
public struct UnitRanking: Sendable, Equatable {
    /// KV groups, best first.
    public var groups: [Int]
    /// Per group, its query heads (global indices), best first.
    public var heads: [[Int]]
    /// FFN channels, best first.
    public var channels: [Int]

    /// The Grams the ranking reads (the inputs of q/k/v, o, gate/up and down).
    public static let grams = ["attn_in", "attn", "mlp_in", "act"]

    /// The ranking of `block`'s units from its Grams (`grams[name]` = XᵀX of the value over the calibration tokens).
    public init(block: Block, grams: [String: Tensor]) throws {
        guard let a = LlamaBlock.attentionSizes(of: block), let f = LlamaBlock.ffnWidth(of: block) else {
            throw SearchError("the ranking needs a Llama block with attention and an MLP")
        }
        func saliencyWeights(_ value: String) throws -> [Double] {
            guard var g = grams[value] else { throw SearchError("missing the Gram of '\(value)'") }
            let n = g.shape[0]
            let mean = g.diagonalSum / Double(max(n, 1))
            g.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= 2 } }
            let inverse = try spdInverse(g.addingToDiagonal(Double(Float(max(0.02 * mean, 1e-8)))))
            return inverse.withUnsafeBufferPointer { p in (0..<n).map { 1 / max(Double(p[$0 * n + $0]), 1e-30) } }
        }
        func rows(_ name: String, _ s: [Double]) -> [Double] {
            let w = block.parameters[name]!, n = w.shape[1]
            return w.withUnsafeBufferPointer { p in (0..<w.shape[0]).map { r in (0..<n).reduce(0.0) { $0 + Double(p[r * n + $1] * p[r * n + $1]) * s[$1] } } }
        }
        func columns(_ name: String, _ s: [Double]) -> [Double] {
            let w = block.parameters[name]!, n = w.shape[1]
            var out = [Double](repeating: 0, count: n)
            w.withUnsafeBufferPointer { p in for r in 0..<w.shape[0] { for c in 0..<n { out[c] += Double(p[r * n + c] * p[r * n + c]) } } }
            return (0..<n).map { out[$0] * s[$0] }
        }
        let attnIn = try saliencyWeights("attn_in"), attn = try saliencyWeights("attn")
        let mlpIn = try saliencyWeights("mlp_in"), act = try saliencyWeights("act")
        let q = rows("attn.q.weight", attnIn), o = columns("attn.o.weight", attn)
        let k = rows("attn.k.weight", attnIn), v = rows("attn.v.weight", attnIn)
        let d = a.headDimensions, perGroup = a.heads / a.kvHeads
        let headScore = (0..<a.heads).map { h -> Double in ((h * d)..<((h + 1) * d)).reduce(0.0) { $0 + q[$1] + o[$1] } }
        let groupScore = (0..<a.kvHeads).map { g -> Double in
            let query: Double = ((g * perGroup)..<((g + 1) * perGroup)).reduce(0.0) { $0 + headScore[$1] }
            let keyValue: Double = ((g * d)..<((g + 1) * d)).reduce(0.0) { $0 + k[$1] + v[$1] }
            return query + keyValue
        }
        let gate = rows("mlp.gate.weight", mlpIn), up = rows("mlp.up.weight", mlpIn), down = columns("mlp.down.weight", act)
        let channelScore = (0..<f).map { gate[$0] + up[$0] + down[$0] }
        groups = Self.descending(groupScore)
        heads = (0..<a.kvHeads).map { g in Self.descending(Array(headScore[(g * perGroup)..<((g + 1) * perGroup)])).map { g * perGroup + $0 } }
        channels = Self.descending(channelScore)
    }

    /// A ranking given directly (tests, or a ranking kept from an earlier run).
    public init(groups: [Int], heads: [[Int]], channels: [Int]) {
        self.groups = groups
        self.heads = heads
        self.channels = channels
    }

    /// Every unit of a block with `space`'s dense sizes in index order (timing, where which units stay does not matter).
    public init(inOrderOf space: SearchSpace.BlockSpace) {
        self.init(groups: Array(0..<space.groups),
                  heads: (0..<space.groups).map { g in Array((g * space.headsPerGroup)..<((g + 1) * space.headsPerGroup)) },
                  channels: Array(0..<space.channels))
    }

    /// Indices of `scores` from the highest down (ties: the lower index first).
    static func descending(_ scores: [Double]) -> [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    }

    /// The slicing plan that keeps `choice`'s units (ascending indices); nil for the dense choice.
    public func plan(_ choice: BlockChoice, dense: BlockChoice) -> BlockSlicing.Plan? {
        guard choice != dense else { return nil }
        var plan = BlockSlicing.Plan()
        if choice.groups == 0 {
            plan.removeAttention = true
        } else if choice.groups != dense.groups || choice.headsPerGroup != dense.headsPerGroup {
            let kept = groups.prefix(choice.groups).sorted()
            plan.keptKVHeads = kept
            plan.keptHeads = kept.flatMap { heads[$0].prefix(choice.headsPerGroup) }.sorted()
        }
        if choice.channels == 0 {
            plan.removeMLP = true
        } else if choice.channels != dense.channels {
            plan.keptChannels = channels.prefix(choice.channels).sorted()
        }
        return plan
    }

    /// `block` sliced to `choice` (the block itself for the dense choice).
    public func sliced(_ block: Block, _ choice: BlockChoice, dense: BlockChoice) throws -> Block {
        guard let plan = plan(choice, dense: dense) else { return block }
        var cut = try BlockSlicing.slice(block, plan)
        // Masks that a structured mask left whole after the slice carry nothing.
        for (name, mask) in cut.masks where mask.prunedCount == 0 { cut.masks[name] = nil }
        return cut
    }

    /// `block` with `choice`'s removed units masked in place (the dense shapes: rows of q/k/v/gate/up, columns of o and
    /// down), which computes what the sliced block computes: the form the block-local fits (lstsq, reform, regional)
    /// run on before the slice.
    public func masked(_ block: Block, _ choice: BlockChoice, dense: BlockChoice) -> Block {
        guard let plan = plan(choice, dense: dense) else { return block }
        let d = LlamaBlock.attentionSizes(of: block)?.headDimensions ?? 0
        var out = block
        func mask(_ name: String, keepRows: Set<Int>?, keepColumns: Set<Int>?) {
            guard let w = out.parameters[name] else { return }
            let (r, c) = (w.shape[0], w.shape[1])
            var keep = out.masks[name]?.keep ?? [UInt8](repeating: 1, count: r * c)
            for i in 0..<r {
                for j in 0..<c where !(keepRows?.contains(i) ?? true) || !(keepColumns?.contains(j) ?? true) { keep[i * c + j] = 0 }
            }
            out.setMasked(name, weight: w, mask: Mask(shape: w.shape, keep: keep))
        }
        func dims(_ units: [Int]) -> Set<Int> { Set(units.flatMap { ($0 * d)..<(($0 + 1) * d) }) }
        if plan.removeAttention || plan.keptHeads != nil {
            let heads = dims(plan.removeAttention ? [] : plan.keptHeads!), kv = dims(plan.removeAttention ? [] : plan.keptKVHeads!)
            for name in ["attn.q", "attn.k", "attn.v"] {
                mask(name + ".weight", keepRows: name == "attn.q" ? heads : kv, keepColumns: nil)
                if let bias = out.parameters[name + ".bias"] {
                    let keepSet = name == "attn.q" ? heads : kv
                    out.parameters[name + ".bias"] = Tensor(shape: bias.shape, bias.scalars.enumerated().map { keepSet.contains($0) ? $1 : 0 })
                }
            }
            mask("attn.o.weight", keepRows: nil, keepColumns: heads)
        }
        if plan.removeMLP || plan.keptChannels != nil {
            let kept = Set(plan.removeMLP ? [] : plan.keptChannels!)
            mask("mlp.gate.weight", keepRows: kept, keepColumns: nil)
            mask("mlp.up.weight", keepRows: kept, keepColumns: nil)
            mask("mlp.down.weight", keepRows: nil, keepColumns: kept)
        }
        return out
    }
}
