/// The one table of canonical names of a Llama-family block, shared by the builder (`LlamaBlock.make`), the shape
/// recogniser (`BlockShape`), slicing (`BlockSlicing`), the exporters and the passes: parameter names are local
/// (`attn.q.weight`; `blocks.<index>.` in front model-wide), values are the tap points between nodes.
///
///     x ─attn_norm→ attn_in ─attn.q/k/v→ q,k,v ─rope→ q_rot,k_rot ─attn.core→ attn ─attn.o→ attn_out ─(+x)→ h
///     h ─mlp_norm→ mlp_in ─mlp.gate/up→ gate,up ─silu·→ act ─mlp.down→ mlp_out ─(+h)→ y
///
/// A mixture of experts replaces `mlp.gate/up/down` by one `moe` node reading `mlp_in` (its parameters under the
/// node's prefix: `<prefix>.router.weight`, `<prefix>.experts.<e>.{gate,up,down}.weight`,
/// `<prefix>.shared.{gate,up,down}.weight`); a low-rank linear reads `<node>.a` and `<node>.b` instead of
/// `<node>.weight`.
public enum BlockSchema {
    /// The block's input (the residual stream).
    public static let input = "x"
    /// The attention sub-layer's normed input.
    public static let attentionInput = "attn_in"
    /// The attention's concatenated head outputs, the input of `attn.o`.
    public static let attentionHeads = "attn"
    /// The residual stream between the sub-layers.
    public static let residual = "h"
    /// The MLP's normed input.
    public static let mlpInput = "mlp_in"
    /// The MLP's activations, the input of `mlp.down`.
    public static let activation = "act"
    /// The block's output with both sub-layers.
    public static let output = "y"

    /// The attention sub-layer's norm weight.
    public static let attentionNorm = "attn_norm.weight"
    /// The MLP sub-layer's norm weight.
    public static let mlpNorm = "mlp_norm.weight"
    /// The attention linears (nodes): query, key, value, output.
    public static let attentionLinears = ["attn.q", "attn.k", "attn.v", "attn.o"]
    /// The MLP linears (nodes): gate, up, down.
    public static let mlpLinears = ["mlp.gate", "mlp.up", "mlp.down"]
    /// The parameter prefixes of each sub-layer, norm included (what removing the sub-layer removes).
    public static let attentionPrefixes = ["attn.", "attn_norm."]
    public static let mlpPrefixes = ["mlp.", "mlp_norm."]

    /// The weight of linear node `node` in its dense form.
    public static func weight(_ node: String) -> String { node + ".weight" }
    /// The bias of linear node `node`.
    public static func bias(_ node: String) -> String { node + ".bias" }
}
