extension LlamaFamilyConfig {
    /// The first inconsistency, as (JSON path of the field, problem), or nil when the config is usable.
    ///
    /// Checked: sizes positive; without `head_dim`, heads divide `hidden_size`; KV heads divide heads; the head
    /// dimension is even (RoPE rotates pairs); `hidden_act` is silu; `rms_norm_eps` and `rope_theta` positive;
    /// `rope_scaling` parameters (see `RopeScaling.problem()`); token ids and `sliding_window` non-negative/positive;
    /// Qwen2 with q/k/v biases and Mistral/Qwen2 without MLP biases (what their transformers classes build).
    public func problem() -> (field: String, reason: String)? {
        let sizes: [(String, Int)] = [
            ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
            ("max_position_embeddings", maxPositionEmbeddings), ("vocab_size", vocabSize),
        ]
        for (field, value) in sizes where value <= 0 { return (field, "must be positive, got \(value)") }
        if let headDim {
            guard headDim > 0 else { return ("head_dim", "must be positive, got \(headDim)") }
            guard headDim % 2 == 0 else { return ("head_dim", "must be even (RoPE rotates pairs), got \(headDim)") }
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                return ("num_attention_heads", "\(numAttentionHeads) heads do not divide hidden_size \(hiddenSize), and head_dim is not given")
            }
            guard headDimension % 2 == 0 else {
                return ("num_attention_heads", "hidden_size / num_attention_heads = \(headDimension) is odd; RoPE needs an even head dimension")
            }
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            return ("num_key_value_heads", "\(numKeyValueHeads) key-value heads do not divide \(numAttentionHeads) attention heads")
        }
        guard hiddenAct == "silu" else { return ("hidden_act", "the Llama family uses 'silu', got '\(hiddenAct)'") }
        guard rmsNormEps > 0, rmsNormEps.isFinite else { return ("rms_norm_eps", "must be a positive number, got \(rmsNormEps)") }
        guard ropeTheta > 0, ropeTheta.isFinite else { return ("rope_theta", "must be a positive number, got \(ropeTheta)") }
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
}
