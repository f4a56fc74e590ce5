extension TokenizerSpec {
    /// The `tokenizer.ggml.model` values that are supported.
    public static let supportedGGUFModels = ["gpt2", "llama"]

    /// Reads a tokenizer description from GGUF metadata, with llama.cpp's defaults:
    ///
    /// - `tokenizer.ggml.model` "gpt2" → byte-level BPE (bos/eos default 11, no BOS added unless
    ///   `add_bos_token` says so; the llama3 family of `tokenizer.ggml.pre` adds BOS and skips merges for
    ///   words that are tokens); "llama" → SentencePiece BPE (bos 1, eos 2, unk 0, BOS added,
    ///   space prefix on).
    /// - `tokenizer.ggml.{bos,eos,unknown,padding}_token_id` override the defaults when in range;
    ///   `add_bos_token`, `add_eos_token`, `add_space_prefix` override the flags.
    public init(gguf: GGUFFile) throws {
        try self.init(ggufMetadata: gguf.metadata, source: gguf.path)
    }

    /// Reads a tokenizer description from GGUF-style metadata read from `source` (a GGUF file, or the tokenizer
    /// that a safetensors archive keeps as `lancet.tokenizer`), as `init(gguf:)` does.
    public init(ggufMetadata meta: [String: GGUFValue], source src: String) throws {
        func strings(_ key: String, required: Bool) throws -> [String]? {
            guard let v = meta[key] else {
                if required { throw TokenizerError(src, key, "missing") }
                return nil
            }
            guard case let .array(_, items) = v else { throw TokenizerError(src, key, "must be an array of strings, got \(v.type)") }
            return try items.enumerated().map { i, item in
                guard let s = item.stringValue else { throw TokenizerError(src, "\(key)[\(i)]", "must be a string, got \(item.type)") }
                return s
            }
        }
        func numbers(_ key: String) throws -> [GGUFValue]? {
            guard let v = meta[key] else { return nil }
            guard case let .array(_, items) = v else { throw TokenizerError(src, key, "must be an array, got \(v.type)") }
            return items
        }
        func flag(_ key: String) throws -> Bool? {
            guard let v = meta[key] else { return nil }
            guard let b = v.boolValue else { throw TokenizerError(src, key, "must be a bool, got \(v.type)") }
            return b
        }

        guard let modelValue = meta["tokenizer.ggml.model"] else {
            throw TokenizerError(src, "tokenizer.ggml.model", "missing: the file has no tokenizer")
        }
        guard let model = modelValue.stringValue else {
            throw TokenizerError(src, "tokenizer.ggml.model", "must be a string, got \(modelValue.type)")
        }
        let kind: TokenizerKind
        switch model {
        case "gpt2": kind = .byteLevelBPE
        case "llama": kind = .sentencePieceBPE
        default:
            throw TokenizerError(src, "tokenizer.ggml.model", "unsupported tokenizer '\(model)' (supported: \(Self.supportedGGUFModels.joined(separator: ", ")))")
        }
        let tokens = try strings("tokenizer.ggml.tokens", required: true)!
        var types: [TokenType]? = nil
        if let raw = try numbers("tokenizer.ggml.token_type") {
            types = try raw.enumerated().map { i, v in
                guard let n = v.intValue else { throw TokenizerError(src, "tokenizer.ggml.token_type[\(i)]", "must be an integer, got \(v.type)") }
                guard let type = Int32(exactly: n).flatMap(TokenType.init(rawValue:)) else {
                    let known = TokenType.allCases.map { "\($0.rawValue) \($0)" }.joined(separator: ", ")
                    throw TokenizerError(src, "tokenizer.ggml.token_type[\(i)]", "\(n) is not a token type (known: \(known))")
                }
                return type
            }
        }
        var scores: [Float]? = nil
        if let raw = try numbers("tokenizer.ggml.scores") {
            scores = try raw.enumerated().map { i, v in
                guard let d = v.doubleValue else { throw TokenizerError(src, "tokenizer.ggml.scores[\(i)]", "must be a number, got \(v.type)") }
                return Float(d)
            }
        }
        var merges: [MergeRule]? = nil
        if kind == .byteLevelBPE {
            let raw = try strings("tokenizer.ggml.merges", required: true)!
            merges = try raw.enumerated().map { i, line in try MergeRule(parsing: line, src, "tokenizer.ggml.merges[\(i)]") }
        }

        let pre = meta["tokenizer.ggml.pre"]?.stringValue ?? ""
        var bos: Int32?, eos: Int32?, unk: Int32?, pad: Int32?
        var addBOS = false, addSpacePrefix = false, ignoreMerges = false
        switch kind {
        case .byteLevelBPE:
            bos = 11; eos = 11
            if let a = PreTokenizer(name: pre)?.algorithm, a == .llama3, ["llama3", "llama-v3", "llama-bpe", "falcon3"].contains(pre) {
                ignoreMerges = true
                addBOS = true
            }
        case .sentencePieceBPE:
            bos = 1; eos = 2; unk = 0
            addBOS = true
            addSpacePrefix = true
        }
        let count = tokens.count
        func id(_ key: String, _ current: Int32?) -> Int32? {
            guard let n = meta[key]?.intValue else { return current }
            return n >= 0 && n < count ? Int32(n) : current  // llama.cpp warns and keeps the default
        }
        bos = id("tokenizer.ggml.bos_token_id", bos)
        eos = id("tokenizer.ggml.eos_token_id", eos)
        unk = id("tokenizer.ggml.unknown_token_id", unk)
        pad = id("tokenizer.ggml.padding_token_id", pad)
        if let b = try flag("tokenizer.ggml.add_bos_token") { addBOS = b }
        let addEOS = try flag("tokenizer.ggml.add_eos_token") ?? false
        if let p = try flag("tokenizer.ggml.add_space_prefix") { addSpacePrefix = p }
        // A default that does not fit a (tiny) vocabulary means "none" rather than an invalid id.
        func fit(_ v: Int32?) -> Int32? { v.flatMap { Int($0) < count ? $0 : nil } }
        bos = fit(bos); eos = fit(eos); unk = fit(unk); pad = fit(pad)

        self.init(
            source: src, kind: kind, tokens: tokens, tokenTypes: types, scores: scores, merges: merges,
            preTokenizer: pre, bos: bos, eos: eos, unk: unk, pad: pad, addBOS: addBOS, addEOS: addEOS,
            addSpacePrefix: addSpacePrefix, ignoreMerges: ignoreMerges,
            chatTemplate: meta["tokenizer.chat_template"]?.stringValue,
            fieldNames: ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores"))
    }
}

extension MergeRule {
    /// Parses a merge line "left right", split at the first space after the first character
    /// (a piece may itself begin with a space in some vocabularies), as llama.cpp does.
    init(parsing line: String, _ source: String, _ field: String) throws {
        let u = Array(line.utf8)
        guard u.count >= 3, let cut = u[1...].firstIndex(of: 0x20), cut + 1 < u.count else {
            throw TokenizerError(source, field, "'\(line)' is not two pieces separated by a space")
        }
        self.init(String(decoding: u[..<cut], as: UTF8.self), String(decoding: u[(cut + 1)...], as: UTF8.self))
    }
}

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`).
    public convenience init(gguf: GGUFFile) throws {
        try self.init(spec: TokenizerSpec(gguf: gguf))
    }

    /// The tokenizer described by GGUF-style metadata (`tokenizer.ggml.*`) read from `source`.
    public convenience init(ggufMetadata: [String: GGUFValue], source: String) throws {
        try self.init(spec: TokenizerSpec(ggufMetadata: ggufMetadata, source: source))
    }
}
