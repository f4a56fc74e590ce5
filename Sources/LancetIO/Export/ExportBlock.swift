import LancetIR
import LancetTensor

/// One decoder block as the exporters write it: its sub-layers' sizes and dense weights, read from the
/// block's graph after checking that the graph computes a Llama-family block.
///
/// The check is `BlockShape.recognize` (the model's RoPE settings and norm ε): node by node, names, op kinds,
/// inputs, outputs and the attributes that change the computation, as `LlamaBlock.make` builds them, with a
/// mixture-of-experts node in place of the MLP's linears. Linears may be dense or low-rank; low-rank ones
/// are multiplied out (`b·a`), so the written weight computes the same product. Masked weights are read
/// as they are: their pruned entries already hold zeros. Weights stay in the model's RoPE pairing;
/// each exporter permutes q/k rows to its format's pairing.
struct ExportBlock {
    /// The attention sub-layer.
    struct Attention {
        var heads: Int
        var kvHeads: Int
        var headDimensions: Int
        var window: Int?
        var norm: Tensor
        var q: Tensor, k: Tensor, v: Tensor, o: Tensor
        var qBias: Tensor?, kBias: Tensor?, vBias: Tensor?
    }

    /// A dense SwiGLU MLP.
    struct MLP {
        var norm: Tensor
        var gate: Tensor, up: Tensor, down: Tensor
        var width: Int { gate.shape[0] }
    }

    /// A mixture of equal-width SwiGLU experts (a shared expert already folded into each).
    struct MoE {
        var norm: Tensor
        var router: Tensor
        var gate: [Tensor], up: [Tensor], down: [Tensor]
        var topK: Int
        var width: Int { gate[0].shape[0] }
    }

    /// The feed-forward sub-layer.
    enum FFN {
        case dense(MLP)
        case moe(MoE)
    }

    var attention: Attention?
    var ffn: FFN?

    /// Reads block `index` of `model`; `path` names the destination in errors.
    static func read(_ block: Block, index: Int, model: Model, path: String) throws -> ExportBlock {
        func fail(_ reason: String) -> ModelExportError { ModelExportError(path, block: index, reason) }
        let shape: BlockShape
        do { shape = try BlockShape.recognize(block, epsilon: Float(model.config.normEpsilon), rope: model.config.rope) } catch let e as BlockShapeError {
            throw fail(e.reason)
        }
        let moeNodes = block.nodes(of: MoEOp.self)
        let sizes = shape.attention

        var out = ExportBlock()
        if let a = sizes {
            out.attention = Attention(
                heads: a.heads, kvHeads: a.kvHeads, headDimensions: a.headDimensions, window: a.window,
                norm: try parameter(block, "attn_norm.weight", fail),
                q: try dense(block, "attn.q", fail), k: try dense(block, "attn.k", fail),
                v: try dense(block, "attn.v", fail), o: try dense(block, "attn.o", fail),
                qBias: block.parameters["attn.q.bias"], kBias: block.parameters["attn.k.bias"], vBias: block.parameters["attn.v.bias"])
        }
        if let (node, op) = moeNodes.first {
            guard op.router == .linear else {
                throw fail("mixture of experts '\(node.name)' has a \(op.router.rawValue) router; llama.cpp's llama architecture (and transformers' Mixtral) routes by one linear layer (carve with a linear router: moefy router centroid or fitted)")
            }
            // llama.cpp weighs the chosen experts by the router's softmax renormalised over them: unit weights are the same
            // thing only for one chosen expert.
            let renormalised = op.weighting == .softmax && op.normalizeTopK
            guard renormalised || (op.weighting == .unit && op.topK == 1) else {
                throw fail(op.weighting == .unit
                           ? "mixture of experts '\(node.name)' adds its \(op.topK) chosen experts with weight 1; llama.cpp's llama architecture (and transformers' Mixtral) weights them by the router's softmax renormalised over them (carve with weighting: softmax)"
                           : "mixture of experts '\(node.name)' does not renormalise its top-\(op.topK) weights; llama.cpp's llama architecture always does")
            }
            var experts = try (0..<op.experts).map { e in
                let n = op.expertNames(e)
                return try [n.gate, n.up, n.down].map { try parameter(block, $0, fail) }
            }
            let widths = experts.map { $0[0].shape[0] }
            guard Set(widths).count == 1 else {
                throw fail("mixture of experts '\(node.name)' has experts of different widths \(widths); Mixtral-style expert tensors need equal widths")
            }
            // The llama architecture has no shared expert: its channels join every routed expert. The chosen experts'
            // weights sum to one, so the shared expert is added exactly once (llama.cpp computes it once per chosen expert).
            if op.hasSharedExpert {
                let n = op.expertNames(nil)
                let shared = try [n.gate, n.up, n.down].map { try parameter(block, $0, fail) }
                experts = experts.map { [Tensor.concatenatingRows($0[0], shared[0]), Tensor.concatenatingRows($0[1], shared[1]),
                                         Tensor.concatenatingColumns($0[2], shared[2])] }
            }
            out.ffn = .moe(MoE(norm: try parameter(block, "mlp_norm.weight", fail), router: try parameter(block, op.parameterNames[0], fail),
                               gate: experts.map { $0[0] }, up: experts.map { $0[1] }, down: experts.map { $0[2] }, topK: op.topK))
        } else if shape.mlpWidth != nil {
            out.ffn = .dense(MLP(norm: try parameter(block, "mlp_norm.weight", fail), gate: try dense(block, "mlp.gate", fail),
                                 up: try dense(block, "mlp.up", fail), down: try dense(block, "mlp.down", fail)))
        }
        return out
    }

    private static func parameter(_ block: Block, _ name: String, _ fail: (String) -> ModelExportError) throws -> Tensor {
        guard let t = block.parameters[name] else { throw fail("parameter '\(name)' is missing") }
        return t
    }

    /// The dense weight `[out, in]` of the linear node `name`: its weight, or `b·a` for a low-rank linear.
    private static func dense(_ block: Block, _ name: String, _ fail: (String) -> ModelExportError) throws -> Tensor {
        guard let op = block.node(name)?.op as? LinearOp else { throw fail("node '\(name)' is missing or not a linear") }
        if let w = op.weight { return try parameter(block, w, fail) }
        let (a, b) = op.factors!
        return matmul(try parameter(block, b, fail), try parameter(block, a, fail))
    }
}
