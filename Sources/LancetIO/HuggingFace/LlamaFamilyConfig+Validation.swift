extension LlamaFamilyConfig {
    /// The first inconsistency, as (JSON path of the field, problem), or nil when the config is usable.
    ///
    /// Checked: sizes positive; then `LlamaHyperparameters`' checks, the ones the GGUF importer applies too
    /// (sizes bounded; without `head_dim`, heads divide `hidden_size`; KV heads divide heads; the head
    /// dimension is even, as RoPE rotates pairs; `rms_norm_eps` and `rope_theta` positive and finite); `hidden_act` is silu;
    /// `rope_scaling` parameters (see `RopeScaling.problem()`); token ids and `sliding_window` non-negative/positive;
    /// Qwen2 with q/k/v biases and Mistral/Qwen2 without MLP biases (what their transformers classes build).
    public func problem() -> (field: String, reason: String)? {
        let sizes: [(String, Int)] = [
            ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
            ("max_position_embeddings", maxPositionEmbeddings), ("vocab_size", vocabSize),
        ]
        for (field, value) in sizes where value <= 0 { return (field, "must be positive, got \(value)") }
        if let (field, reason) = hyperparameters.problem(names: Self.fieldName) { return (Self.fieldName(field), reason) }
        guard hiddenAct == "silu" else { return ("hidden_act", "the Llama family uses 'silu', got '\(hiddenAct)'") }
        if let (field, reason) = ropeScaling?.problem() { return ("rope_scaling.\(field)", reason) }
        if let bosTokenId, bosTokenId < 0 { return ("bos_token_id", "must be non-negative, got \(bosTokenId)") }
        if let i = eosTokenIds.firstIndex(where: { $0 < 0 }) {
            return (eosTokenIds.count == 1 ? "eos_token_id" : "eos_token_id[\(i)]", "must be non-negative, got \(eosTokenIds[i])")
        }
        if let slidingWindow, slidingWindow <= 0 { return ("sliding_window", "must be positive, got \(slidingWindow)") }
        if modelType == .qwen2 && !attentionBias { return ("attention_bias", "Qwen2 always has q/k/v biases") }
        if modelType == .mistral && attentionBias { return ("attention_bias", "Mistral has no attention biases") }
        if modelType != .llama && mlpBias { return ("mlp_bias", "only Llama supports MLP biases") }
        return nil
    }

    /// The sizes and constants in the form the GGUF importer checks them too.
    public var hyperparameters: LlamaHyperparameters {
        LlamaHyperparameters(
            blockCount: numHiddenLayers, hiddenSize: hiddenSize, vocabularySize: vocabSize, contextLength: maxPositionEmbeddings,
            heads: [numAttentionHeads], kvHeads: [numKeyValueHeads], headDimension: headDim, rotaryDimensions: nil,
            ffnWidths: [intermediateSize], normEpsilon: rmsNormEps, ropeTheta: ropeTheta)
    }

    /// The `config.json` field that states `field`.
    static func fieldName(_ field: LlamaHyperparameters.Field) -> String {
        switch field {
        case .blockCount: "num_hidden_layers"
        case .hiddenSize: "hidden_size"
        case .vocabularySize: "vocab_size"
        case .contextLength: "max_position_embeddings"
        case .heads: "num_attention_heads"
        case .kvHeads: "num_key_value_heads"
        case .headDimension: "head_dim"
        case .rotaryDimensions: "head_dim"
        case .ffnWidth: "intermediate_size"
        case .normEpsilon: "rms_norm_eps"
        case .ropeTheta: "rope_theta"
        }
    }
}
