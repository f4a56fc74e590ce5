import LancetIR
import LancetTensor

extension PruneStructuredPass {
    /// Cuts a plan's heads and channels out of a Llama block's tensors (and masks) and rebuilds the block
    /// with `LlamaBlock.make` so that the graph's sizes (RoPE heads, attention heads and KV heads) match:
    ///
    ///     attn.q.weight [heads·d, hidden]   rows of kept query heads     (attn.q.bias likewise)
    ///     attn.k/v.weight [kv·d, hidden]    rows of kept KV heads        (biases likewise)
    ///     attn.o.weight [hidden, heads·d]   columns of kept query heads
    ///     mlp.gate/up.weight [ffn, hidden]  rows of kept channels
    ///     mlp.down.weight [hidden, ffn]     columns of kept channels
    ///
    /// Kept indices are ascending, so in `even` mode query head j of the cut block still reads KV head
    /// j / (heads′ / kvHeads). A removed sub-layer takes its norm with it.
    enum Slicing {
        /// The linears of the attention sub-layer.
        static let attentionLinears = ["attn.q", "attn.k", "attn.v", "attn.o"]
        /// The linears of the MLP sub-layer.
        static let mlpLinears = ["mlp.gate", "mlp.up", "mlp.down"]

        /// Throws unless `block` has exactly the graph `LlamaBlock.make` builds for its sizes, with dense linears.
        static func checkRebuildable(_ block: Block, index: Int) throws {
            let expected = LlamaBlock.make(attention: LlamaBlock.attentionSizes(of: block), hasMLP: LlamaBlock.ffnWidth(of: block) != nil,
                                           epsilon: epsilon(of: block), rope: rope(of: block), parameters: [:])
            let same = expected.nodes.count == block.nodes.count && zip(expected.nodes, block.nodes).allSatisfy { e, n in
                e.name == n.name && e.kind == n.kind && e.inputs == n.inputs && e.outputs == n.outputs
            } && expected.input == block.input && expected.output == block.output
            guard same else {
                throw StructuredPruneError(block: index, "prune-structured needs a Llama block (attention and SwiGLU MLP as LlamaBlock.make builds them); this block's graph differs")
            }
            for (node, op) in block.nodes(of: LinearOp.self) where op.weight == nil {
                throw StructuredPruneError(block: index, "prune-structured needs dense linears; '\(node.name)' is low-rank")
            }
        }

        /// The cut and rebuilt block.
        static func apply(_ plan: Plan, to block: Block) throws -> Block {
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
                drop(prefixes: ["attn.", "attn_norm."])
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
                drop(prefixes: ["mlp.", "mlp_norm."])
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
        static func elementIndices(shape: [Int], rows: [Int]?, columns: [Int]?) -> (shape: [Int], indices: [Int]) {
            let cols = shape.count == 2 ? shape[1] : 1
            let r = rows ?? Array(0..<shape[0]), c = columns ?? Array(0..<cols)
            let indices = r.flatMap { row in c.map { row * cols + $0 } }
            return (shape.count == 2 ? [r.count, c.count] : [r.count], indices)
        }

        /// Rows `rows` and columns `columns` (all when nil) of a matrix or vector, in the given orders.
        static func gather(_ t: Tensor, rows: [Int]? = nil, columns: [Int]? = nil) -> Tensor {
            let (shape, indices) = elementIndices(shape: t.shape, rows: rows, columns: columns)
            return t.withUnsafeBufferPointer { p in Tensor(shape: shape, indices.map { p[$0] }) }
        }

        /// The ε of the block's norms.
        static func epsilon(of block: Block) -> Float { block.nodes(of: RMSNormOp.self).first?.op.epsilon ?? 1e-5 }

        /// The block's RoPE settings (unused placeholders for a block without attention).
        static func rope(of block: Block) -> RopeConfig {
            block.nodes(of: RopeOp.self).first?.op.config ?? RopeConfig(theta: 10000, rotaryDimensions: 2, pairing: .adjacent)
        }
    }
}
