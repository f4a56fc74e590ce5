import LancetTensor

/// Builds the Llama-family decoder block in the IR: pre-norm attention with RoPE and grouped-query
/// attention, then a pre-norm SwiGLU MLP, each added to the residual stream.
///
/// ```
/// attn_in  = rmsnorm(x)            mlp_in  = rmsnorm(h)
/// q, k, v  = linear(attn_in) ×3    gate, up = linear(mlp_in) ×2
/// q', k'   = rope(q), rope(k)      act     = silu(gate) ⊙ up
/// attn     = attention(q', k', v)  mlp_out = linear(act)          (mlp.down)
/// attn_out = linear(attn)          y       = h + mlp_out
/// h        = x + attn_out
/// ```
/// Parameter names: `attn_norm.weight`, `attn.{q,k,v,o}.weight` (and `.bias` for q/k/v when present),
/// `mlp_norm.weight`, `mlp.{gate,up,down}.weight`. Either sub-layer may be absent (`attention: nil` or
/// `mlp: nil`), as after a structured removal.
public enum LlamaBlock {
    /// Sizes of the attention sub-layer.
    public struct Attention: Sendable, Equatable {
        /// Query heads.
        public var heads: Int
        /// Key/value heads.
        public var kvHeads: Int
        /// Size of each head.
        public var headDimensions: Int
        /// Whether q, k and v have biases (Qwen2).
        public var qkvBias: Bool
        /// Sliding-window length (Mistral), or nil.
        public var window: Int?
        /// Creates sizes.
        public init(heads: Int, kvHeads: Int, headDimensions: Int, qkvBias: Bool = false, window: Int? = nil) {
            self.heads = heads
            self.kvHeads = kvHeads
            self.headDimensions = headDimensions
            self.qkvBias = qkvBias
            self.window = window
        }
    }

    /// The graph of a block with the given sub-layers; `parameters` must hold the tensors it names.
    public static func make(attention: Attention?, hasMLP: Bool, epsilon: Float, rope: RopeConfig, parameters: [String: Tensor]) -> Block {
        var nodes: [Node] = []
        var residual = "x"
        if let a = attention {
            nodes += [
                Node("attn_norm", RMSNormOp(weight: "attn_norm.weight", epsilon: epsilon), inputs: ["x"], outputs: ["attn_in"]),
                Node("attn.q", LinearOp(prefix: "attn.q", hasBias: a.qkvBias), inputs: ["attn_in"], outputs: ["q"]),
                Node("attn.k", LinearOp(prefix: "attn.k", hasBias: a.qkvBias), inputs: ["attn_in"], outputs: ["k"]),
                Node("attn.v", LinearOp(prefix: "attn.v", hasBias: a.qkvBias), inputs: ["attn_in"], outputs: ["v"]),
                Node("attn.q_rope", RopeOp(heads: a.heads, headDimensions: a.headDimensions, config: rope), inputs: ["q"], outputs: ["q_rot"]),
                Node("attn.k_rope", RopeOp(heads: a.kvHeads, headDimensions: a.headDimensions, config: rope), inputs: ["k"], outputs: ["k_rot"]),
                Node("attn.core", AttentionOp(heads: a.heads, kvHeads: a.kvHeads, headDimensions: a.headDimensions, window: a.window),
                     inputs: ["q_rot", "k_rot", "v"], outputs: ["attn"]),
                Node("attn.o", LinearOp(prefix: "attn.o"), inputs: ["attn"], outputs: ["attn_out"]),
                Node("attn.residual", AddOp(), inputs: ["x", "attn_out"], outputs: ["h"]),
            ]
            residual = "h"
        }
        if hasMLP {
            nodes += [
                Node("mlp_norm", RMSNormOp(weight: "mlp_norm.weight", epsilon: epsilon), inputs: [residual], outputs: ["mlp_in"]),
                Node("mlp.gate", LinearOp(prefix: "mlp.gate"), inputs: ["mlp_in"], outputs: ["gate"]),
                Node("mlp.up", LinearOp(prefix: "mlp.up"), inputs: ["mlp_in"], outputs: ["up"]),
                Node("mlp.act", SiLUOp(), inputs: ["gate"], outputs: ["gate_act"]),
                Node("mlp.mul", MulOp(), inputs: ["gate_act", "up"], outputs: ["act"]),
                Node("mlp.down", LinearOp(prefix: "mlp.down"), inputs: ["act"], outputs: ["mlp_out"]),
                Node("mlp.residual", AddOp(), inputs: [residual, "mlp_out"], outputs: ["y"]),
            ]
            residual = "y"
        }
        return Block(input: "x", output: residual, nodes: nodes, parameters: parameters)
    }

    /// The attention sizes of a block built by `make`, read back from its attention node.
    public static func attentionSizes(of block: Block) -> Attention? {
        guard let a = block.nodes(of: AttentionOp.self).first?.op else { return nil }
        let bias = block.parameters["attn.q.bias"] != nil
        return Attention(heads: a.heads, kvHeads: a.kvHeads, headDimensions: a.headDimensions, qkvBias: bias, window: a.window)
    }

    /// The FFN width of a block built by `make` (rows of `mlp.gate.weight`), or nil without an MLP.
    public static func ffnWidth(of block: Block) -> Int? { block.parameters["mlp.gate.weight"]?.shape[0] }

    /// The FFN width of a block built by `make` whose `mlp.gate` may be dense or low-rank (the rows of its weight or of
    /// its outer factor), or nil without an MLP.
    public static func gateWidth(of block: Block) -> Int? {
        guard let gate = block.node("mlp.gate")?.op as? LinearOp, let rows = gate.weight ?? gate.factors?.b else { return nil }
        return block.parameters[rows]?.shape[0]
    }

    /// The number of linears of `block` held as low-rank factors.
    public static func lowRankLinearCount(of block: Block) -> Int { block.nodes(of: LinearOp.self).filter { $0.op.factors != nil }.count }

    /// The dense MLP's nodes of a block built by `make`.
    public static let mlpNodes = ["mlp.gate", "mlp.up", "mlp.act", "mlp.mul", "mlp.down"]

    /// The mixture node's name (and parameter prefix) that replaces a block's dense MLP.
    public static let mixtureNode = "mlp.moe"

    /// `block` with its dense SwiGLU MLP (`mlpNodes` and their weights) replaced by the mixture `moe`, which reads the
    /// MLP's input and writes its output; `parameters` are the mixture's.
    public static func replacingMLP(of block: Block, with moe: MoEOp, parameters: [String: Tensor]) throws -> Block {
        try replacingMLP(of: block, with: moe, named: moe.prefix, parameters: parameters)
    }

    /// `block` with its dense SwiGLU MLP (`mlpNodes` and their weights) replaced by one node `name` running `op`, which
    /// reads the MLP's input and writes its output; `parameters` are the op's.
    public static func replacingMLP(of block: Block, with op: any Op, named name: String, parameters: [String: Tensor]) throws -> Block {
        guard let at = block.nodeIndex("mlp.gate"), let down = block.node("mlp.down") else {
            throw OpShapeError("the block has no dense SwiGLU MLP (mlp.gate … mlp.down) to replace")
        }
        var out = block
        let input = block.nodes[at].inputs[0], output = down.outputs[0]
        out.nodes.removeAll { mlpNodes.contains($0.name) }
        out.nodes.insert(Node(name, op, inputs: [input], outputs: [output]), at: at)
        for name in ["mlp.gate", "mlp.up", "mlp.down"].map({ $0 + ".weight" }) { out.parameters[name] = nil; out.masks[name] = nil }
        out.parameters.merge(parameters) { $1 }
        return out
    }
}
