extension Tokenizer {
    /// The tokenizer as GGUF metadata (`tokenizer.ggml.*`), the inverse of `TokenizerSpec(gguf:)`:
    /// model (`gpt2` for byte-level BPE, `llama` for SentencePiece BPE), pre-tokenizer name (`default` when
    /// none is named), tokens, token types, merges and scores when the source had them, the special ids
    /// that are set, and the `add_bos_token`, `add_eos_token` and `add_space_prefix` flags.
    /// The chat template (`tokenizer.chat_template`) is left to the caller.
    public var ggufMetadata: [(String, GGUFValue)] {
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string(kind == .byteLevelBPE ? "gpt2" : "llama")),
            ("tokenizer.ggml.pre", .string(preTokenizer.map { $0.name.isEmpty ? "default" : $0.name } ?? "default")),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, tokenTypes.map { .int32($0.rawValue) })),
        ]
        if let scores { m.append(("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) }))) }
        if let merges { m.append(("tokenizer.ggml.merges", .array(.string, merges.map { .string($0.left + " " + $0.right) }))) }
        let ids: [(String, Int32?)] = [("bos", bos), ("eos", eos), ("unknown", unk), ("padding", pad)]
        for (name, id) in ids {
            if let id { m.append(("tokenizer.ggml.\(name)_token_id", .uint32(UInt32(id)))) }
        }
        m += [
            ("tokenizer.ggml.add_bos_token", .bool(addBOS)),
            ("tokenizer.ggml.add_eos_token", .bool(addEOS)),
            ("tokenizer.ggml.add_space_prefix", .bool(addSpacePrefix)),
        ]
        return m
    }
}
