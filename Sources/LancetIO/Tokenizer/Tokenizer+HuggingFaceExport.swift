import Foundation

extension Tokenizer {
    /// The tokenizer as a Hugging Face `tokenizer.json` (a `BPE` model), the inverse of
    /// `TokenizerSpec(tokenizerJSON:tokenizerConfig:)`.
    ///
    /// - Byte-level BPE: the pre-tokenizer is the Hugging Face configuration of the same regexes
    ///   (`gpt-2` family → `ByteLevel`; `smollm` family → `Digits` + `ByteLevel`; `llama3` family and `qwen2`
    ///   family → `Split` with their regex + `ByteLevel`), with a `ByteLevel` decoder.
    /// - SentencePiece BPE: `byte_fallback`, a `Prepend`/`Replace` normalizer (`Prepend` only with a space
    ///   prefix) and the matching decoder. It needs explicit merge rules (from `tokenizer.json`); merges that
    ///   llama.cpp derives from GGUF scores are not written out.
    ///
    /// Control and user-defined tokens are listed in `added_tokens` (control ones as `special`); BOS/EOS
    /// adding is expressed by a `TemplateProcessing` post-processor. Throws `TokenizerError` for a
    /// pre-tokenizer Hugging Face cannot express (llama.cpp's `default` chain) or a SentencePiece vocabulary
    /// without merges.
    public func huggingFaceTokenizerJSON() throws -> Data {
        let src = "tokenizer.json"
        guard let merges else {
            throw TokenizerError(src, "model.merges", "the tokenizer has no merge rules (SentencePiece merges derived from GGUF scores cannot be written); export as GGUF instead")
        }
        var root: [String: Any] = ["version": "1.0", "truncation": NSNull(), "padding": NSNull()]
        var added: [[String: Any]] = []
        for (i, type) in tokenTypes.enumerated() where type == .control || type == .userDefined {
            let id = Int32(i)
            added.append([
                "id": i, "content": tokens[i], "single_word": false, "lstrip": leftStripped.contains(id),
                "rstrip": rightStripped.contains(id), "normalized": type == .userDefined, "special": type == .control,
            ])
        }
        root["added_tokens"] = added

        let byteLevel: (Bool) -> [String: Any] = { regex in
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        switch kind {
        case .byteLevelBPE:
            root["normalizer"] = NSNull()
            guard let pre = preTokenizer else { throw TokenizerError(src, "pre_tokenizer", "byte-level tokenizer without a pre-tokenizer") }
            switch pre.algorithm {
            case .gpt2:
                root["pre_tokenizer"] = byteLevel(true)
            case .digitsThenGPT2:
                root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(true)]]
            case .llama3, .qwen2:
                let regex = pre.algorithm == .llama3 ? TokenizerSpec.llama3Regex : TokenizerSpec.qwen2Regex
                root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false], byteLevel(false),
                ]]
            case .llamaDefault:
                throw TokenizerError(src, "pre_tokenizer", "llama.cpp's '\(pre.name.isEmpty ? "default" : pre.name)' pre-tokenizer chain has no Hugging Face equivalent; export as GGUF instead")
            }
            root["decoder"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
        case .sentencePieceBPE:
            let replace: [String: Any] = ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
            root["normalizer"] = addSpacePrefix
                ? ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "\u{2581}"], replace]] : replace
            root["pre_tokenizer"] = NSNull()
            var steps: [[String: Any]] = [
                ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
            ]
            if addSpacePrefix { steps.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
            root["decoder"] = ["type": "Sequence", "decoders": steps]
        }
        root["post_processor"] = postProcessor

        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { vocab[t] = i }
        root["model"] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": unk.map { tokens[Int($0)] } ?? NSNull(),
            "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
            "fuse_unk": kind == .sentencePieceBPE, "byte_fallback": kind == .sentencePieceBPE, "ignore_merges": ignoreMerges,
            "vocab": vocab, "merges": merges.map { $0.left.contains(" ") || $0.right.contains(" ") ? [$0.left, $0.right] as Any : "\($0.left) \($0.right)" },
        ] as [String: Any]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// A `TemplateProcessing` post-processor adding BOS and/or EOS, or for byte-level BPE without them the
    /// usual `ByteLevel` one (nil for SentencePiece).
    private var postProcessor: Any {
        let b = addBOS ? bos : nil, e = addEOS ? eos : nil
        guard b != nil || e != nil else {
            return kind == .byteLevelBPE
                ? ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true] as [String: Any] : NSNull()
        }
        func special(_ id: Int32) -> [String: Any] { ["SpecialToken": ["id": tokens[Int(id)], "type_id": 0]] }
        func sequence(_ name: String, _ typeId: Int) -> [String: Any] { ["Sequence": ["id": name, "type_id": typeId]] }
        let single = (b.map { [special($0)] } ?? []) + [sequence("A", 0)] + (e.map { [special($0)] } ?? [])
        let pair = single + (b.map { [special($0)] } ?? []) + [sequence("B", 1)] + (e.map { [special($0)] } ?? [])
        var specials: [String: Any] = [:]
        for id in [b, e].compactMap({ $0 }) { specials[tokens[Int(id)]] = ["id": tokens[Int(id)], "ids": [Int(id)], "tokens": [tokens[Int(id)]]] }
        return ["type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials] as [String: Any]
    }

    /// The matching `tokenizer_config.json`: special tokens by text, the BOS/EOS flags, the chat template and
    /// `model_max_length`, for `PreTrainedTokenizerFast`.
    public func huggingFaceTokenizerConfigJSON(modelMaxLength: Int? = nil) throws -> Data {
        func text(_ id: Int32?) -> Any { id.map { tokens[Int($0)] } ?? NSNull() }
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false,
            "add_bos_token": addBOS, "add_eos_token": addEOS,
            "bos_token": text(bos), "eos_token": text(eos), "unk_token": text(unk), "pad_token": text(pad),
        ]
        if let chatTemplate { config["chat_template"] = chatTemplate }
        if let modelMaxLength { config["model_max_length"] = modelMaxLength }
        return try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }
}
