import Foundation

/// What `lancet inspect` reports about a model file: format, file type and bits per weight, architecture,
/// sizes, hyperparameters (RoPE θ, RMS ε), tokenizer (BOS/EOS, chat template family), tied embeddings, every
/// tensor with its count of zero weights, and the surgery provenance. The weights are read only to count zeros.
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
        /// Elements whose value (dequantised for quantised types) is exactly zero; nil when the type cannot be read.
        public var zeros: Int?

        /// Number of elements.
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// A special token: its id and text.
    public struct SpecialToken: Sendable, Encodable {
        /// The id.
        public var id: Int
        /// The token's text, when the id is in the vocabulary.
        public var text: String?
    }

    /// `gguf`, `lancet` (Lancet's archive, a GGUF container of the IR), `lancet-safetensors` (the archive in a
    /// safetensors file) or `safetensors` (a Hugging Face folder).
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
    /// Every tensor, in the file's order.
    public var tensors: [TensorEntry]
    /// Sum of tensor element counts.
    public var parameterCount: Int
    /// Surgery provenance records (JSON), oldest first.
    public var provenance: [String]
    /// The file type: llama.cpp's name of `general.file_type` (`Q4_1`, `Q4_K_M`, `F32`, …), or, without it, the
    /// storage type of most of the weight matrices followed by "(guessed)".
    public var fileType: String? = nil
    /// Bytes of the file (GGUF) or of the folder's files (safetensors).
    public var fileBytes: Int? = nil
    /// RoPE base frequency θ.
    public var ropeTheta: Double? = nil
    /// RMS-norm ε.
    public var rmsEpsilon: Double? = nil
    /// Beginning-of-sequence token.
    public var bos: SpecialToken? = nil
    /// End-of-sequence token.
    public var eos: SpecialToken? = nil
    /// Whether the tokenizer prepends BOS to a text.
    public var addsBOS: Bool? = nil
    /// The chat template's family (`ChatML`, `Llama 3`, `Llama 2`, or `other`), nil without a template.
    public var chatTemplateFamily: String? = nil
    /// Whether the output projection reuses the token embedding (no separate output matrix stored).
    public var tiedEmbeddings: Bool? = nil
    /// Linears held as low-rank factors, over all blocks (Lancet archives; nil for other formats).
    public var lowRankLinears: Int? = nil
    /// Tensors that several blocks share and the file stores once (Lancet archives; nil for other formats).
    public var sharedTensors: Int? = nil

    /// Bytes of all tensors' data.
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }

    /// Tensor data bits per parameter (llama.cpp's BPW): tensor bytes × 8 / elements.
    public var bitsPerWeight: Double { parameterCount == 0 ? 0 : Double(tensorBytes) * 8 / Double(parameterCount) }

    /// Exact zeros among the weight matrices of the blocks (tensors of rank ≥ 2 whose name has a block index),
    /// with the elements counted; tensors of a type that cannot be read are left out of both.
    public var blockMatrixZeros: (zeros: Int, elements: Int) {
        tensors.filter { $0.shape.count >= 2 && TensorNameOrder.blockIndex($0.name) != nil }.reduce((0, 0)) { total, t in
            guard let z = t.zeros else { return total }
            return (total.0 + z, total.1 + t.elementCount)
        }
    }

    /// Exact zeros among all tensors' elements, with the elements counted (readable types only).
    public var allZeros: (zeros: Int, elements: Int) {
        tensors.reduce((0, 0)) { total, t in t.zeros.map { (total.0 + $0, total.1 + t.elementCount) } ?? total }
    }

    /// Tensors whose type Lancet cannot read (their zeros are not counted).
    public var unreadTensors: [String] { tensors.filter { $0.zeros == nil }.map(\.name) }

    enum CodingKeys: String, CodingKey {
        case format, path, architecture, name, blocks, tensors, provenance
        case hiddenSize = "hidden_size", heads, kvHeads = "kv_heads", ffnWidth = "ffn_width"
        case vocabularySize = "vocabulary_size", contextLength = "context_length"
        case tokenizerKind = "tokenizer", tokenizerVocabularySize = "tokenizer_vocabulary_size"
        case parameterCount = "parameter_count"
        case fileType = "file_type", fileBytes = "file_bytes", tensorBytes = "tensor_bytes", bitsPerWeight = "bits_per_weight"
        case ropeTheta = "rope_theta", rmsEpsilon = "rms_epsilon", bos, eos, addsBOS = "adds_bos"
        case chatTemplateFamily = "chat_template", tiedEmbeddings = "tied_embeddings"
        case lowRankLinears = "low_rank_linears", sharedTensors = "shared_tensors"
        case blockMatrixZeros = "block_matrix_zeros", blockMatrixElements = "block_matrix_elements"
        case zeros, unreadTensors = "unread_tensors"
    }

    /// Every stored field, the derived sizes and the zero counts (`zeros` over all tensors).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(path, forKey: .path)
        try c.encode(architecture, forKey: .architecture)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encode(blocks, forKey: .blocks)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(heads, forKey: .heads)
        try c.encode(kvHeads, forKey: .kvHeads)
        try c.encode(ffnWidth, forKey: .ffnWidth)
        try c.encode(vocabularySize, forKey: .vocabularySize)
        try c.encodeIfPresent(contextLength, forKey: .contextLength)
        try c.encodeIfPresent(tokenizerKind, forKey: .tokenizerKind)
        try c.encodeIfPresent(tokenizerVocabularySize, forKey: .tokenizerVocabularySize)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(parameterCount, forKey: .parameterCount)
        try c.encode(provenance, forKey: .provenance)
        try c.encodeIfPresent(fileType, forKey: .fileType)
        try c.encodeIfPresent(fileBytes, forKey: .fileBytes)
        try c.encode(tensorBytes, forKey: .tensorBytes)
        try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(rmsEpsilon, forKey: .rmsEpsilon)
        try c.encodeIfPresent(bos, forKey: .bos)
        try c.encodeIfPresent(eos, forKey: .eos)
        try c.encodeIfPresent(addsBOS, forKey: .addsBOS)
        try c.encodeIfPresent(chatTemplateFamily, forKey: .chatTemplateFamily)
        try c.encodeIfPresent(tiedEmbeddings, forKey: .tiedEmbeddings)
        try c.encodeIfPresent(lowRankLinears, forKey: .lowRankLinears)
        try c.encodeIfPresent(sharedTensors, forKey: .sharedTensors)
        let block = blockMatrixZeros
        try c.encode(block.zeros, forKey: .blockMatrixZeros)
        try c.encode(block.elements, forKey: .blockMatrixElements)
        try c.encode(allZeros.zeros, forKey: .zeros)
        try c.encode(unreadTensors, forKey: .unreadTensors)
    }

    /// The family name of a chat template's text: one Lancet renders, or `other`.
    static func chatTemplateFamily(_ template: String?) -> String? {
        guard let template else { return nil }
        return (try? ChatTemplate(template))?.family.rawValue ?? "other"
    }
}

extension ModelFileSummary {
    /// A summary of a GGUF file from its metadata and tensor infos, with the zeros of every tensor counted.
    public init(gguf file: GGUFFile) {
        let arch = file.string("general.architecture") ?? "unknown"
        func perLayer(_ key: String) -> [Int] {
            if let v = file.metadata["\(arch).\(key)"] {
                if let i = v.intValue { return [i] }
                if let a = v.arrayValue { let ints = a.compactMap(\.intValue); return Set(ints).count == 1 ? [ints[0]] : ints }
            }
            return []
        }
        let n = file.int("\(arch).block_count") ?? 0
        let heads = perLayer("attention.head_count")
        self.init(
            format: "gguf", path: file.path, architecture: arch, name: file.string("general.name"), blocks: n,
            hiddenSize: file.int("\(arch).embedding_length") ?? 0, heads: heads,
            kvHeads: file.metadata["\(arch).attention.head_count_kv"] == nil ? heads : perLayer("attention.head_count_kv"),
            ffnWidth: perLayer("feed_forward_length"),
            vocabularySize: file.info("token_embd.weight")?.shape.first ?? file.int("\(arch).vocab_size") ?? 0,
            contextLength: file.int("\(arch).context_length"), tokenizerKind: file.string("tokenizer.ggml.model"),
            tokenizerVocabularySize: file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count,
            tensors: file.tensors.map {
                TensorEntry(name: $0.name, type: $0.type.name, shape: $0.shape, bytes: $0.byteCount, zeros: ZeroWeightCount.zeros(in: $0, of: file))
            },
            parameterCount: file.tensors.reduce(0) { $0 + $1.elementCount },
            provenance: file.metadata["lancet.provenance"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        fileType = file.int("general.file_type").map { Self.fileTypeName(code: $0) } ?? dominantMatrixType.map { "\($0) (guessed)" }
        fileBytes = FileSize.bytes(ofFile: file.path)
        ropeTheta = file.double("\(arch).rope.freq_base")
        rmsEpsilon = file.double("\(arch).attention.layer_norm_rms_epsilon")
        tiedEmbeddings = file.info("token_embd.weight") != nil && file.info("output.weight") == nil
        if let spec = try? TokenizerSpec(gguf: file) {
            setTokenizer(bos: spec.bos, eos: spec.eos, addsBOS: spec.addBOS, tokens: spec.tokens, chatTemplate: spec.chatTemplate)
        }
    }

    /// Records the tokenizer's special tokens, whether it adds BOS, and its chat template's family.
    mutating func setTokenizer(bos: Int32?, eos: Int32?, addsBOS: Bool, tokens: [String], chatTemplate: String?) {
        func special(_ id: Int32?) -> SpecialToken? {
            id.map { SpecialToken(id: Int($0), text: tokens.indices.contains(Int($0)) ? tokens[Int($0)] : nil) }
        }
        self.bos = special(bos)
        self.eos = special(eos)
        self.addsBOS = addsBOS
        self.chatTemplateFamily = Self.chatTemplateFamily(chatTemplate)
    }

    /// The storage type holding most elements of the weight matrices (tensors of rank ≥ 2).
    var dominantMatrixType: String? {
        var elements: [String: Int] = [:]
        for t in tensors where t.shape.count >= 2 { elements[t.type, default: 0] += t.elementCount }
        return elements.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
    }
}
