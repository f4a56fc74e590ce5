/// The Hugging Face tensor names of the Llama family (Llama, Mistral, Qwen2), as data importers and
/// exporters share: `model.embed_tokens.weight`, `model.layers.{i}.self_attn.q_proj.weight`, …, `lm_head.weight`.
///
/// RoPE layout: Hugging Face stores q_proj and k_proj rows in the "halves" pairing (within each head,
/// row `j` rotates with row `j + headDim/2`), while GGUF files from llama.cpp's converter store them in the
/// "adjacent" pairing (rows `2j` and `2j + 1`). Convert with `RopePairing.permuteRows`, using the query head
/// count for q_proj and the key-value head count for k_proj. v_proj and o_proj are not permuted.
public enum LlamaTensorNames {
    /// The projections of one attention sub-layer.
    public enum AttentionProjection: String, CaseIterable, Sendable {
        case query = "q_proj", key = "k_proj", value = "v_proj", output = "o_proj"
    }

    /// The projections of one gated MLP sub-layer.
    public enum MLPProjection: String, CaseIterable, Sendable {
        case gate = "gate_proj", up = "up_proj", down = "down_proj"
    }

    /// Token embedding, `[vocab, hidden]`.
    public static let embedding = "model.embed_tokens.weight"
    /// Final RMSNorm weight, `[hidden]`.
    public static let finalNorm = "model.norm.weight"
    /// Output head, `[vocab, hidden]`; absent when `tie_word_embeddings` is true.
    public static let outputHead = "lm_head.weight"

    /// The name prefix of block `layer`: `model.layers.{layer}`.
    public static func layerPrefix(_ layer: Int) -> String { "model.layers.\(layer)" }

    /// The RMSNorm before attention, `[hidden]`.
    public static func attentionNorm(_ layer: Int) -> String { "\(layerPrefix(layer)).input_layernorm.weight" }
    /// The RMSNorm before the MLP, `[hidden]`.
    public static func mlpNorm(_ layer: Int) -> String { "\(layerPrefix(layer)).post_attention_layernorm.weight" }

    /// An attention projection's weight (`[out, in]`) or, with `bias: true`, its bias (`[out]`).
    public static func attention(_ layer: Int, _ projection: AttentionProjection, bias: Bool = false) -> String {
        "\(layerPrefix(layer)).self_attn.\(projection.rawValue).\(bias ? "bias" : "weight")"
    }

    /// An MLP projection's weight (`[out, in]`) or, with `bias: true`, its bias (`[out]`).
    public static func mlp(_ layer: Int, _ projection: MLPProjection, bias: Bool = false) -> String {
        "\(layerPrefix(layer)).mlp.\(projection.rawValue).\(bias ? "bias" : "weight")"
    }

    /// The names of one block's tensors for `config`'s bias settings, in a fixed order.
    public static func layerTensors(_ layer: Int, config: LlamaFamilyConfig) -> [String] {
        var names = [attentionNorm(layer)]
        for p in AttentionProjection.allCases {
            names.append(attention(layer, p))
            let biased = p == .output ? config.hasOutputProjectionBias : config.hasQKVBias
            if biased { names.append(attention(layer, p, bias: true)) }
        }
        names.append(mlpNorm(layer))
        for p in MLPProjection.allCases {
            names.append(mlp(layer, p))
            if config.mlpBias { names.append(mlp(layer, p, bias: true)) }
        }
        return names
    }

    /// Every tensor name a checkpoint for `config` holds: embedding, blocks in order, final norm, and the
    /// output head unless tied. Importers check a checkpoint against this list (no missing, no unused names).
    public static func allTensors(config: LlamaFamilyConfig) -> [String] {
        var names = [embedding]
        for layer in 0..<config.numHiddenLayers { names += layerTensors(layer, config: config) }
        names.append(finalNorm)
        if !config.tieWordEmbeddings { names.append(outputHead) }
        return names
    }

    /// The expected shape of each tensor of `allTensors(config:)`, by name.
    public static func shapes(config: LlamaFamilyConfig) -> [String: [Int]] {
        let h = config.hiddenSize, f = config.intermediateSize, d = config.headDimension
        let q = config.numAttentionHeads * d, kv = config.numKeyValueHeads * d
        var shapes: [String: [Int]] = [embedding: [config.vocabSize, h], finalNorm: [h]]
        if !config.tieWordEmbeddings { shapes[outputHead] = [config.vocabSize, h] }
        for l in 0..<config.numHiddenLayers {
            shapes[attentionNorm(l)] = [h]
            shapes[mlpNorm(l)] = [h]
            let out: [AttentionProjection: Int] = [.query: q, .key: kv, .value: kv, .output: h]
            for p in AttentionProjection.allCases {
                shapes[attention(l, p)] = p == .output ? [h, q] : [out[p]!, h]
                shapes[attention(l, p, bias: true)] = [out[p]!]
            }
            shapes[mlp(l, .gate)] = [f, h]
            shapes[mlp(l, .up)] = [f, h]
            shapes[mlp(l, .down)] = [h, f]
            for p in MLPProjection.allCases { shapes[mlp(l, p, bias: true)] = [p == .down ? h : f] }
        }
        let present = Set(allTensors(config: config))
        return shapes.filter { present.contains($0.key) }
    }
}
