/// What `lancet inspect` reports about a model file without loading its weights: format, architecture,
/// sizes, tokenizer, every tensor, the parameter count and the surgery provenance.
public struct ModelFileSummary: Sendable, Encodable {
    /// One stored tensor.
    public struct TensorEntry: Sendable, Encodable {
        /// The name as stored.
        public var name: String
        /// The storage type (`F32`, `Q4_1`, `BF16`, …).
        public var type: String
        /// Row-major shape.
        public var shape: [Int]
        /// Bytes stored.
        public var bytes: Int
    }

    /// `gguf` or `safetensors`.
    public var format: String
    /// The file or folder.
    public var path: String
    /// The architecture name.
    public var architecture: String
    /// The model's name from its metadata.
    public var name: String?
    /// Number of decoder blocks.
    public var blocks: Int
    /// Residual width.
    public var hiddenSize: Int
    /// Query heads per block (one value when all blocks agree).
    public var heads: [Int]
    /// KV heads per block.
    public var kvHeads: [Int]
    /// FFN width per block.
    public var ffnWidth: [Int]
    /// Vocabulary size of the embedding.
    public var vocabularySize: Int
    /// Training context length.
    public var contextLength: Int?
    /// Tokenizer kind (`gpt2` byte-level BPE, `llama` SentencePiece, …).
    public var tokenizerKind: String?
    /// Tokens in the tokenizer's vocabulary.
    public var tokenizerVocabularySize: Int?
    /// Every tensor.
    public var tensors: [TensorEntry]
    /// Sum of tensor element counts.
    public var parameterCount: Int
    /// Surgery provenance records (JSON), oldest first.
    public var provenance: [String]

    enum CodingKeys: String, CodingKey {
        case format, path, architecture, name, blocks, tensors, provenance
        case hiddenSize = "hidden_size", heads, kvHeads = "kv_heads", ffnWidth = "ffn_width"
        case vocabularySize = "vocabulary_size", contextLength = "context_length"
        case tokenizerKind = "tokenizer", tokenizerVocabularySize = "tokenizer_vocabulary_size"
        case parameterCount = "parameter_count"
    }
}

extension ModelFileSummary {
    /// A summary of a GGUF file from its metadata and tensor infos.
    public init(gguf file: GGUFFile) {
        let arch = file.string("general.architecture") ?? "unknown"
        func perLayer(_ key: String, _ n: Int) -> [Int] {
            if let v = file.metadata["\(arch).\(key)"] {
                if let i = v.intValue { return [i] }
                if let a = v.arrayValue { let ints = a.compactMap(\.intValue); return Set(ints).count == 1 ? [ints[0]] : ints }
            }
            return []
        }
        let n = file.int("\(arch).block_count") ?? 0
        let heads = perLayer("attention.head_count", n)
        self.init(
            format: "gguf", path: file.path, architecture: arch, name: file.string("general.name"), blocks: n,
            hiddenSize: file.int("\(arch).embedding_length") ?? 0, heads: heads,
            kvHeads: file.metadata["\(arch).attention.head_count_kv"] == nil ? heads : perLayer("attention.head_count_kv", n),
            ffnWidth: perLayer("feed_forward_length", n),
            vocabularySize: file.info("token_embd.weight")?.shape.first ?? file.int("\(arch).vocab_size") ?? 0,
            contextLength: file.int("\(arch).context_length"), tokenizerKind: file.string("tokenizer.ggml.model"),
            tokenizerVocabularySize: file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count,
            tensors: file.tensors.map { TensorEntry(name: $0.name, type: $0.type.name, shape: $0.shape, bytes: $0.byteCount) },
            parameterCount: file.tensors.reduce(0) { $0 + $1.elementCount },
            provenance: file.metadata["lancet.provenance"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// The human-readable report: a header of sizes, then the tensor table.
    public func render(showTensors: Bool = true) -> String {
        func list(_ v: [Int]) -> String { v.count == 1 ? String(v[0]) : "per block [" + v.map(String.init).joined(separator: ", ") + "]" }
        var lines = [
            "file:          \(path) (\(format))",
            "architecture:  \(architecture)" + (name.map { "  (\($0))" } ?? ""),
            "blocks:        \(blocks)",
            "hidden:        \(hiddenSize)",
            "heads:         \(list(heads))   KV heads: \(list(kvHeads))",
            "FFN width:     \(list(ffnWidth))",
            "vocabulary:    \(vocabularySize)",
        ]
        if let c = contextLength { lines.append("context:       \(c)") }
        if let k = tokenizerKind { lines.append("tokenizer:     \(k)\(tokenizerVocabularySize.map { ", \($0) tokens" } ?? "")") }
        lines.append("parameters:    \(parameterCount) (\(Self.humanCount(parameterCount)))")
        lines.append("tensors:       \(tensors.count), \(Self.humanBytes(tensors.reduce(0) { $0 + $1.bytes }))")
        if !provenance.isEmpty { lines.append("provenance:    \(provenance.count) record(s); see --json") }
        guard showTensors else { return lines.joined(separator: "\n") }
        let nameWidth = max(4, tensors.map(\.name.count).max() ?? 0)
        lines.append("")
        lines.append("NAME".padding(nameWidth) + "  TYPE  " + "SHAPE".padding(16) + "BYTES")
        for t in tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            lines.append(t.name.padding(nameWidth) + "  " + t.type.padding(6) + shape.padding(16) + String(t.bytes))
        }
        return lines.joined(separator: "\n")
    }

    /// `1.23 M`-style counts.
    public static func humanCount(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format1(d / 1e9)) + " B" }
        if d >= 1e6 { return String(format1(d / 1e6)) + " M" }
        if d >= 1e3 { return String(format1(d / 1e3)) + " K" }
        return String(n)
    }

    /// `93.8 MiB`-style sizes.
    public static func humanBytes(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1_073_741_824 { return format1(d / 1_073_741_824) + " GiB" }
        if d >= 1_048_576 { return format1(d / 1_048_576) + " MiB" }
        if d >= 1024 { return format1(d / 1024) + " KiB" }
        return "\(n) B"
    }

    static func format1(_ v: Double) -> String { String((v * 100).rounded() / 100) }
}

extension String {
    /// The string padded with spaces to at least `width` characters.
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
