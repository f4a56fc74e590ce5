import LancetTensor

/// Head and channel slicing of a Llama-family block, a public IR operation: cuts whole query heads, KV heads and
/// FFN channels out of the block's tensors (and masks), or removes a sub-layer with its norm, and rebuilds the
/// graph with `LlamaBlock.make` so that its sizes (RoPE heads, attention heads and KV heads) match:
///
///     attn.q.weight [heads·d, hidden]   rows of kept query heads     (attn.q.bias likewise)
///     attn.k/v.weight [kv·d, hidden]    rows of kept KV heads        (biases likewise)
///     attn.o.weight [hidden, heads·d]   columns of kept query heads
///     mlp.gate/up.weight [ffn, hidden]  rows of kept channels
///     mlp.down.weight [hidden, ffn]     columns of kept channels
///
/// Kept indices are ascending, so a query head j of the cut block still reads KV head j / (heads′ / kvHeads)
/// when whole KV groups are kept. Used by `prune-structured`, and by any pass that changes block widths
/// (architecture search, collapse replacements).
public enum BlockSlicing {
    /// What to keep.
    public struct Plan: Sendable, Equatable {
        /// Remove the attention sub-layer whole (with its norm).
        public var removeAttention = false
        /// Remove the MLP sub-layer whole (with its norm).
        public var removeMLP = false
        /// Query heads kept, ascending (nil: attention unchanged).
        public var keptHeads: [Int]?
        /// KV heads kept, ascending (nil: attention unchanged).
        public var keptKVHeads: [Int]?
        /// FFN channels kept, ascending (nil: MLP unchanged).
        public var keptChannels: [Int]?
        /// A plan.
        public init(removeAttention: Bool = false, removeMLP: Bool = false, keptHeads: [Int]? = nil, keptKVHeads: [Int]? = nil,
                    keptChannels: [Int]? = nil) {
            self.removeAttention = removeAttention
            self.removeMLP = removeMLP
            self.keptHeads = keptHeads
            self.keptKVHeads = keptKVHeads
            self.keptChannels = keptChannels
        }
    }

    /// Throws unless `block` has exactly the graph `LlamaBlock.make` builds for its sizes (names, kinds and wiring),
    /// with dense linears: the blocks `slice` can cut.
    public static func check(_ block: Block) throws {
        let expected = LlamaBlock.make(attention: LlamaBlock.attentionSizes(of: block), hasMLP: LlamaBlock.ffnWidth(of: block) != nil,
                                       epsilon: epsilon(of: block), rope: rope(of: block), parameters: [:])
        let same = expected.nodes.count == block.nodes.count && zip(expected.nodes, block.nodes).allSatisfy { e, n in
            e.name == n.name && e.kind == n.kind && e.inputs == n.inputs && e.outputs == n.outputs
        } && expected.input == block.input && expected.output == block.output
        guard same else {
            throw BlockShapeError("slicing needs a Llama block (attention and SwiGLU MLP as LlamaBlock.make builds them); this block's graph differs")
        }
        for (node, op) in block.nodes(of: LinearOp.self) where op.weight == nil {
            throw BlockShapeError("slicing needs dense linears; '\(node.name)' is low-rank")
        }
    }

    /// The block with only `plan`'s heads and channels (or without a sub-layer), rebuilt; `check` must hold.
    public static func slice(_ block: Block, _ plan: Plan) throws -> Block {
        try check(block)
        var parameters = block.parameters
        var masks = block.masks
        func keep(_ name: String, rows: [Int]? = nil, columns: [Int]? = nil) {
            guard let t = parameters[name] else { return }
            parameters[name] = gather(t, rows: rows, columns: columns)
            if let m = masks[name] {
                let (shape, indices) = elementIndices(shape: m.shape, rows: rows, columns: columns)
                masks[name] = Mask(shape: shape, keep: indices.map { m.keep[$0] })
            }
        }
        func drop(prefixes: [String]) {
            for name in parameters.keys where prefixes.contains(where: name.hasPrefix) {
                parameters[name] = nil
                masks[name] = nil
            }
        }

        var attention = LlamaBlock.attentionSizes(of: block)
        if plan.removeAttention {
            drop(prefixes: BlockSchema.attentionPrefixes)
            attention = nil
        } else if var a = attention, let heads = plan.keptHeads, let kvHeads = plan.keptKVHeads {
            let d = a.headDimensions
            let qRows = heads.flatMap { ($0 * d)..<(($0 + 1) * d) }, kvRows = kvHeads.flatMap { ($0 * d)..<(($0 + 1) * d) }
            for name in ["attn.q.weight", "attn.q.bias"] { keep(name, rows: qRows) }
            for name in ["attn.k.weight", "attn.k.bias", "attn.v.weight", "attn.v.bias"] { keep(name, rows: kvRows) }
            keep("attn.o.weight", columns: qRows)
            a.heads = heads.count
            a.kvHeads = kvHeads.count
            attention = a
        }
        var hasMLP = LlamaBlock.ffnWidth(of: block) != nil
        if plan.removeMLP {
            drop(prefixes: BlockSchema.mlpPrefixes)
            hasMLP = false
        } else if let channels = plan.keptChannels {
            keep("mlp.gate.weight", rows: channels)
            keep("mlp.up.weight", rows: channels)
            keep("mlp.down.weight", columns: channels)
        }

        var rebuilt = LlamaBlock.make(attention: attention, hasMLP: hasMLP, epsilon: epsilon(of: block), rope: rope(of: block),
                                      parameters: parameters)
        rebuilt.masks = masks
        // Keep a non-default attention scale.
        if let old = block.nodes(of: AttentionOp.self).first?.op, let i = rebuilt.nodes.firstIndex(where: { $0.op is AttentionOp }) {
            var op = rebuilt.nodes[i].op as! AttentionOp
            op.scale = old.scale
            rebuilt.nodes[i].op = op
        }
        return rebuilt
    }

    /// The shape and the row-major element indices of rows `rows` (all when nil) and columns `columns`
    /// (all when nil) of a `[rows, columns]` array; a vector's entries are its rows.
    public static func elementIndices(shape: [Int], rows: [Int]?, columns: [Int]?) -> (shape: [Int], indices: [Int]) {
        let cols = shape.count == 2 ? shape[1] : 1
        let r = rows ?? Array(0..<shape[0]), c = columns ?? Array(0..<cols)
        let indices = r.flatMap { row in c.map { row * cols + $0 } }
        return (shape.count == 2 ? [r.count, c.count] : [r.count], indices)
    }

    /// Rows `rows` and columns `columns` (all when nil) of a matrix or vector, in the given orders.
    public static func gather(_ t: Tensor, rows: [Int]? = nil, columns: [Int]? = nil) -> Tensor {
        let (shape, indices) = elementIndices(shape: t.shape, rows: rows, columns: columns)
        return t.withUnsafeBufferPointer { p in Tensor(shape: shape, indices.map { p[$0] }) }
    }

    /// The ε of the block's norms.
    public static func epsilon(of block: Block) -> Float { block.nodes(of: RMSNormOp.self).first?.op.epsilon ?? 1e-5 }

    /// The block's RoPE settings (unused placeholders for a block without attention).
    public static func rope(of block: Block) -> RopeConfig {
        block.nodes(of: RopeOp.self).first?.op.config ?? RopeConfig(theta: 10000, rotaryDimensions: 2, pairing: .adjacent)
    }
}
