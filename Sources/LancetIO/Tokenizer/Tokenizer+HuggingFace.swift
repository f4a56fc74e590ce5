import Foundation

extension TokenizerSpec {
    /// The Hugging Face pre-tokenizer configurations that map onto a llama.cpp pre-tokenizer.
    public static let supportedHuggingFacePreTokenizers = [
        "ByteLevel(use_regex: true) → gpt-2",
        "Sequence[Digits(individual_digits: true), ByteLevel(use_regex: true)] → smollm",
        "Sequence[Split(Llama 3 regex, Isolated), ByteLevel(use_regex: false)] → llama-bpe",
        "Sequence[Split(Qwen 2 regex, Isolated), ByteLevel(use_regex: false)] → qwen2",
        "none or Metaspace, with byte_fallback BPE → SentencePiece BPE",
    ]

    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads a Hugging Face `tokenizer.json` (a `BPE` model) and, if given, its `tokenizer_config.json`
    /// (`add_bos_token`, `add_eos_token`, `bos_token`, `eos_token`, `unk_token`, `pad_token`,
    /// `chat_template`). Without a config, BOS/EOS adding follows the `TemplateProcessing` post-processor.
    ///
    /// The pre-tokenizer is mapped to the llama.cpp pre-tokenizer that implements the same regexes,
    /// so ids follow llama.cpp; transformers can differ from llama.cpp on rare inputs (see `PreTokenizer`).
    public init(tokenizerJSON: URL, tokenizerConfig: URL? = nil) throws {
        let src = tokenizerJSON.path
        let root = try Self.readJSONObject(tokenizerJSON)
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError(src, "model", "missing") }
        let modelType = model["type"] as? String ?? "BPE"
        guard modelType == "BPE" else {
            throw TokenizerError(src, "model.type", "unsupported model '\(modelType)' (supported: BPE)")
        }
        guard let vocab = model["vocab"] as? [String: Any] else { throw TokenizerError(src, "model.vocab", "missing") }

        // Tokens by id: the model's vocabulary, then added tokens (which may repeat or extend it).
        var byID: [Int: String] = [:]
        for (text, v) in vocab.sorted(by: { $0.key < $1.key }) {
            guard let id = (v as? NSNumber)?.intValue, id >= 0 else {
                throw TokenizerError(src, "model.vocab[\(text)]", "id must be a non-negative integer")
            }
            if let other = byID[id] { throw TokenizerError(src, "model.vocab[\(text)]", "id \(id) is also the id of '\(other)'") }
            byID[id] = text
        }
        var types: [Int: TokenType] = [:]
        var left = Set<Int32>(), right = Set<Int32>()
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        for (i, t) in added.enumerated() {
            guard let id = (t["id"] as? NSNumber)?.intValue, id >= 0, let content = t["content"] as? String else {
                throw TokenizerError(src, "added_tokens[\(i)]", "needs an integer 'id' and a string 'content'")
            }
            if let other = byID[id], other != content {
                throw TokenizerError(src, "added_tokens[\(i)]", "id \(id) is '\(other)' in the vocabulary, not '\(content)'")
            }
            byID[id] = content
            types[id] = (t["special"] as? Bool ?? false) ? .control : .userDefined
            if t["lstrip"] as? Bool == true { left.insert(Int32(id)) }
            if t["rstrip"] as? Bool == true { right.insert(Int32(id)) }
        }
        guard let maxID = byID.keys.max() else { throw TokenizerError(src, "model.vocab", "the vocabulary is empty") }
        // Holes are filled (below), but a vocabulary with more holes than tokens is not one: refuse it before
        // allocating maxID + 1 entries.
        guard maxID < 2 * byID.count else {
            throw TokenizerError(src, "model.vocab", "ids go up to \(maxID) for only \(byID.count) tokens")
        }
        var tokens = [String](repeating: "", count: maxID + 1)
        var tokenTypes = [TokenType](repeating: .normal, count: maxID + 1)
        for i in 0...maxID {
            if let t = byID[i] {
                tokens[i] = t
                tokenTypes[i] = types[i] ?? .normal
            } else {
                tokens[i] = "[PAD\(i)]"  // as llama.cpp's converter fills holes
                tokenTypes[i] = .unused
            }
        }

        guard let rawMerges = model["merges"] as? [Any] else { throw TokenizerError(src, "model.merges", "missing") }
        let merges: [MergeRule] = try rawMerges.enumerated().map { i, m in
            if let s = m as? String { return try MergeRule(parsing: s, src, "model.merges[\(i)]") }
            if let pair = m as? [String], pair.count == 2 { return MergeRule(pair[0], pair[1]) }
            throw TokenizerError(src, "model.merges[\(i)]", "must be \"a b\" or [\"a\", \"b\"]")
        }

        // Which algorithm: byte-level (ByteLevel pre-tokenizer) or SentencePiece-style (byte fallback, ▁).
        let byteFallback = model["byte_fallback"] as? Bool ?? false
        let pre = root["pre_tokenizer"] as? [String: Any]
        var kind = TokenizerKind.byteLevelBPE
        var preName = ""
        var addSpacePrefix = false
        if let name = Self.llamaPreTokenizerName(pre) {
            preName = name
        } else if byteFallback, pre == nil || pre?["type"] as? String == "Metaspace" {
            kind = .sentencePieceBPE
            let normalizers = Self.flatten(root["normalizer"] as? [String: Any], "normalizers")
            addSpacePrefix = normalizers.contains { $0["type"] as? String == "Prepend" }
                || (pre.map { ($0["prepend_scheme"] as? String ?? "always") != "never" } ?? false)
            for (i, t) in tokens.enumerated() where Tokenizer.parseByteToken(t) != nil && tokenTypes[i] == .normal {
                tokenTypes[i] = .byte
            }
        } else {
            throw TokenizerError(src, "pre_tokenizer", "unsupported configuration \(Self.describe(pre)) (supported: \(Self.supportedHuggingFacePreTokenizers.joined(separator: "; ")))")
        }

        // Special ids and flags: the config first, then the post-processor.
        let config = try tokenizerConfig.map(Self.readJSONObject) ?? [:]
        let ids = Dictionary(tokens.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { _, b in b })
        func special(_ key: String) -> Int32? {
            let v = config[key]
            let text = (v as? String) ?? ((v as? [String: Any])?["content"] as? String)
            return text.flatMap { ids[$0] }
        }
        var bos = special("bos_token"), eos = special("eos_token")
        var unk = special("unk_token")
        if unk == nil, let u = model["unk_token"] as? String { unk = ids[u] }
        if let unk, tokenTypes[Int(unk)] == .normal { tokenTypes[Int(unk)] = .unknown }
        var addBOS = config["add_bos_token"] as? Bool
        var addEOS = config["add_eos_token"] as? Bool
        let single = (root["post_processor"] as? [String: Any]).flatMap(Self.templateSingle) ?? []
        if let first = single.first, let t = first, let id = ids[t] {
            if addBOS == nil { addBOS = true }
            if bos == nil { bos = id }
        }
        if single.count > 1, let last = single.last, let t = last, let id = ids[t] {
            if addEOS == nil { addEOS = true }
            if eos == nil { eos = id }
        }
        var chatTemplate = config["chat_template"] as? String
        if chatTemplate == nil, let list = config["chat_template"] as? [[String: Any]] {
            let pick = list.first { $0["name"] as? String == "default" } ?? list.first
            chatTemplate = pick?["template"] as? String
        }

        self.init(
            source: src, kind: kind, tokens: tokens, tokenTypes: tokenTypes, merges: merges, preTokenizer: preName,
            bos: bos, eos: eos, unk: unk, pad: special("pad_token"), addBOS: addBOS ?? false, addEOS: addEOS ?? false,
            addSpacePrefix: addSpacePrefix, ignoreMerges: model["ignore_merges"] as? Bool ?? false,
            leftStripped: left, rightStripped: right, chatTemplate: chatTemplate,
            fieldNames: ("model.vocab", "added_tokens", "model.merges", "model.vocab"))
    }

    /// The llama.cpp pre-tokenizer name for a byte-level configuration, or nil.
    static func llamaPreTokenizerName(_ pre: [String: Any]?) -> String? {
        guard let pre else { return nil }
        let steps = flatten(pre, "pretokenizers")
        func byteLevel(_ s: [String: Any], regex: Bool) -> Bool {
            s["type"] as? String == "ByteLevel" && (s["use_regex"] as? Bool ?? true) == regex
                && (s["add_prefix_space"] as? Bool ?? false) == false
        }
        if steps.count == 1, byteLevel(steps[0], regex: true) { return "gpt-2" }
        guard steps.count == 2 else { return nil }
        if steps[0]["type"] as? String == "Digits", steps[0]["individual_digits"] as? Bool == true,
            byteLevel(steps[1], regex: true)
        {
            return "smollm"
        }
        if steps[0]["type"] as? String == "Split", byteLevel(steps[1], regex: false),
            steps[0]["behavior"] as? String ?? "Isolated" == "Isolated", steps[0]["invert"] as? Bool ?? false == false,
            let regex = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String
        {
            if regex == llama3Regex { return "llama-bpe" }
            if regex == qwen2Regex { return "qwen2" }
        }
        return nil
    }

    private static func flatten(_ node: [String: Any]?, _ key: String) -> [[String: Any]] {
        guard let node else { return [] }
        if node["type"] as? String == "Sequence", let list = node[key] as? [[String: Any]] { return list }
        return [node]
    }

    /// The `single` template of a `TemplateProcessing` post-processor: special-token names, nil for the text.
    private static func templateSingle(_ post: [String: Any]) -> [String?]? {
        let proc = flatten(post, "processors").first { $0["type"] as? String == "TemplateProcessing" }
        guard let single = proc?["single"] as? [[String: Any]] else { return nil }
        return single.map { (($0["SpecialToken"] as? [String: Any])?["id"] as? String) }
    }

    private static func describe(_ pre: [String: Any]?) -> String {
        guard let pre else { return "(none)" }
        let types = flatten(pre, "pretokenizers").map { $0["type"] as? String ?? "?" }
        return types.count == 1 ? types[0] : "Sequence[\(types.joined(separator: ", "))]"
    }

    static func readJSONObject(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError(url.path, "(file)", "cannot read: \(error.localizedDescription)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw TokenizerError(url.path, "(file)", "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw TokenizerError(url.path, "(root)", "must be a JSON object") }
        return dict
    }
}

extension Tokenizer {
    /// The tokenizer of a Hugging Face model folder: `tokenizer.json` and, if present,
    /// `tokenizer_config.json` beside it; the chat template from `chat_template.jinja` when the config has none
    /// (where newer transformers save it).
    public convenience init(huggingFaceFolder folder: URL) throws {
        let json = folder.appendingPathComponent("tokenizer.json")
        let config = folder.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: json.path) else {
            throw TokenizerError(json.path, "(file)", "missing: a Hugging Face folder needs tokenizer.json")
        }
        var spec = try TokenizerSpec(tokenizerJSON: json, tokenizerConfig: FileManager.default.fileExists(atPath: config.path) ? config : nil)
        // Newer transformers save the chat template as chat_template.jinja instead of inside tokenizer_config.json.
        let jinja = folder.appendingPathComponent("chat_template.jinja")
        if spec.chatTemplate == nil, FileManager.default.fileExists(atPath: jinja.path) {
            guard let data = FileManager.default.contents(atPath: jinja.path), let text = String(data: data, encoding: .utf8) else {
                throw TokenizerError(jinja.path, "(file)", "unreadable or not UTF-8 text")
            }
            spec.chatTemplate = text
        }
        try self.init(spec: spec)
    }

    /// The tokenizer of a Hugging Face `tokenizer.json`, with an optional `tokenizer_config.json`.
    public convenience init(tokenizerJSON: URL, tokenizerConfig: URL? = nil) throws {
        try self.init(spec: TokenizerSpec(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig))
    }
}
