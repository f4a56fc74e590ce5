import Foundation

/// A Hugging Face `config.json` of the Llama family: `llama` (Llama 2/3, SmolLM2), `mistral` and `qwen2`.
///
/// Decoding is strict: required sizes must be present and typed, sizes must agree (heads divide the
/// hidden size when `head_dim` is absent, KV heads divide heads), and `model_type` must be one of the
/// family. Defaults follow transformers: `num_key_value_heads` = heads, `head_dim` = hidden / heads,
/// `rope_theta` 10000, `tie_word_embeddings` false, `hidden_act` silu. Use `load(path:)` for errors that name
/// the file and field. Encoding writes what transformers needs to build `LlamaForCausalLM` (or the Mistral /
/// Qwen2 class), in sorted key order, pretty-printed. RoPE is read from `rope_theta`/`rope_scaling` or from
/// transformers 5's `rope_parameters`, and written as `rope_theta`/`rope_scaling`, which transformers 4 and 5 both read.
///
/// Biases differ by architecture, and `attentionBias`/`mlpBias` hold what the architecture really has:
/// Llama reads `attention_bias` (q, k, v and o) and `mlp_bias`; Qwen2 always has q/k/v biases and no o bias;
/// Mistral has none. See `hasQKVBias` and `hasOutputProjectionBias`.
public struct LlamaFamilyConfig: Codable, Equatable, Sendable {
    /// The architectures of the family.
    public enum ModelType: String, Codable, Sendable, CaseIterable {
        case llama, mistral, qwen2

        /// The transformers class for causal LM with this architecture.
        public var causalLMClass: String {
            switch self {
            case .llama: return "LlamaForCausalLM"
            case .mistral: return "MistralForCausalLM"
            case .qwen2: return "Qwen2ForCausalLM"
            }
        }
    }

    /// `model_type`.
    public var modelType: ModelType
    /// `architectures` (default: the causal-LM class of `modelType`).
    public var architectures: [String]
    /// `hidden_size`: the residual width.
    public var hiddenSize: Int
    /// `intermediate_size`: the FFN width.
    public var intermediateSize: Int
    /// `num_hidden_layers`: the number of blocks.
    public var numHiddenLayers: Int
    /// `num_attention_heads`.
    public var numAttentionHeads: Int
    /// `num_key_value_heads` (default: `numAttentionHeads`).
    public var numKeyValueHeads: Int
    /// `head_dim` as written in the file; nil means hidden / heads. Use `headDimension` for the value.
    public var headDim: Int?
    /// `hidden_act`; the family uses `silu`.
    public var hiddenAct: String
    /// `rms_norm_eps`.
    public var rmsNormEps: Double
    /// `rope_theta` (default 10000).
    public var ropeTheta: Double
    /// `rope_scaling`, nil for none.
    public var ropeScaling: RopeScaling?
    /// `max_position_embeddings`.
    public var maxPositionEmbeddings: Int
    /// `vocab_size`.
    public var vocabSize: Int
    /// `tie_word_embeddings` (default false): the output head reuses the token embedding.
    public var tieWordEmbeddings: Bool
    /// Whether q/k/v (and for Llama also o) projections have biases; see the type's notes.
    public var attentionBias: Bool
    /// `mlp_bias` (Llama only): whether gate/up/down projections have biases.
    public var mlpBias: Bool
    /// `bos_token_id`.
    public var bosTokenId: Int?
    /// `eos_token_id`: one id or a list (written as a single integer when there is exactly one).
    public var eosTokenIds: [Int]
    /// `torch_dtype` (newer transformers write `dtype`; both are read), e.g. `bfloat16`.
    public var torchDtype: String?
    /// `sliding_window` (Mistral; Qwen2 applies it only with `use_sliding_window`).
    public var slidingWindow: Int?
    /// `use_sliding_window` (Qwen2).
    public var useSlidingWindow: Bool?
    /// `transformers_version`, written if set.
    public var transformersVersion: String?

    /// A config with transformers' defaults for everything not given.
    public init(modelType: ModelType = .llama, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double,
                ropeTheta: Double = 10000, ropeScaling: RopeScaling? = nil, maxPositionEmbeddings: Int, vocabSize: Int,
                tieWordEmbeddings: Bool = false, attentionBias: Bool? = nil, mlpBias: Bool = false,
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], torchDtype: String? = nil, slidingWindow: Int? = nil) {
        self.modelType = modelType
        self.architectures = [modelType.causalLMClass]
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim
        self.hiddenAct = "silu"
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias ?? (modelType == .qwen2)
        self.mlpBias = mlpBias
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.torchDtype = torchDtype
        self.slidingWindow = slidingWindow
    }

    /// The per-head dimension: `head_dim`, or hidden / heads.
    public var headDimension: Int { headDim ?? hiddenSize / numAttentionHeads }
    /// True when q, k and v projections have biases.
    public var hasQKVBias: Bool { attentionBias }
    /// True when the output projection (o_proj) has a bias: Llama with `attention_bias` only.
    public var hasOutputProjectionBias: Bool { attentionBias && modelType == .llama }
    /// The sliding-window size in effect, if any.
    public var effectiveSlidingWindow: Int? {
        switch modelType {
        case .llama: return nil
        case .mistral: return slidingWindow
        case .qwen2: return useSlidingWindow == true ? slidingWindow : nil
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type"
        case architectures
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case hiddenAct = "hidden_act"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings"
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case torchDtype = "torch_dtype"
        case dtype
        case slidingWindow = "sliding_window"
        case useSlidingWindow = "use_sliding_window"
        case transformersVersion = "transformers_version"
    }

    /// Decodes and validates (see `problem()`); errors carry the offending field's coding path.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let typeName = try c.decodeLocated(String.self, forKey: .modelType)
        guard let modelType = ModelType(rawValue: typeName) else {
            throw DecodingError.dataCorruptedError(forKey: .modelType, in: c, debugDescription:
                "unsupported model_type '\(typeName)' (supported: \(ModelType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.modelType = modelType
        architectures = try c.decodeLocatedIfPresent([String].self, forKey: .architectures) ?? [modelType.causalLMClass]
        hiddenSize = try c.decodeLocated(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decodeLocated(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decodeLocated(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decodeLocated(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeLocatedIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeLocatedIfPresent(Int.self, forKey: .headDim)
        hiddenAct = try c.decodeLocatedIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        rmsNormEps = try c.decodeLocated(Double.self, forKey: .rmsNormEps)
        // transformers ≥ 5 writes `rope_parameters` {rope_theta, rope_type, scaling parameters…} instead of
        // `rope_theta` and `rope_scaling`; it takes precedence when present.
        var theta = try c.decodeLocatedIfPresent(Double.self, forKey: .ropeTheta)
        if c.contains(.ropeParameters), try !c.decodeNil(forKey: .ropeParameters) {
            let parameters = try c.nestedContainer(keyedBy: RopeScaling.CodingKeys.self, forKey: .ropeParameters)
            theta = try parameters.decodeLocatedIfPresent(Double.self, forKey: .ropeTheta) ?? theta
            ropeScaling = try Self.decodeRopeScaling(c, key: .ropeParameters)
        } else {
            ropeScaling = try Self.decodeRopeScaling(c, key: .ropeScaling)
        }
        ropeTheta = theta ?? 10000
        maxPositionEmbeddings = try c.decodeLocated(Int.self, forKey: .maxPositionEmbeddings)
        vocabSize = try c.decodeLocated(Int.self, forKey: .vocabSize)
        tieWordEmbeddings = try c.decodeLocatedIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        let attentionBias = try c.decodeLocatedIfPresent(Bool.self, forKey: .attentionBias)
        let mlpBias = try c.decodeLocatedIfPresent(Bool.self, forKey: .mlpBias)
        switch modelType {  // what transformers' modelling code builds, whatever the file says
        case .llama: (self.attentionBias, self.mlpBias) = (attentionBias ?? false, mlpBias ?? false)
        case .qwen2: (self.attentionBias, self.mlpBias) = (true, false)
        case .mistral: (self.attentionBias, self.mlpBias) = (false, false)
        }
        bosTokenId = try c.decodeLocatedIfPresent(Int.self, forKey: .bosTokenId)
        eosTokenIds = try Self.decodeTokenIds(c, forKey: .eosTokenId)
        torchDtype = try c.decodeLocatedIfPresent(String.self, forKey: .torchDtype) ?? c.decodeLocatedIfPresent(String.self, forKey: .dtype)
        slidingWindow = try c.decodeLocatedIfPresent(Int.self, forKey: .slidingWindow)
        useSlidingWindow = try c.decodeLocatedIfPresent(Bool.self, forKey: .useSlidingWindow)
        transformersVersion = try c.decodeLocatedIfPresent(String.self, forKey: .transformersVersion)
        if let (field, reason) = problem() {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + field.split(separator: ".").map { AnyKey(stringValue: String($0)) }, debugDescription: reason))
        }
    }

    /// Encodes every field transformers reads, omitting absent optionals; Qwen2 and Mistral omit the bias flags
    /// their classes do not read.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(architectures, forKey: .architectures)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encodeIfPresent(headDim, forKey: .headDim)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        if let ropeScaling { try c.encode(ropeScaling, forKey: .ropeScaling) } else { try c.encodeNil(forKey: .ropeScaling) }
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        if modelType == .llama {
            try c.encode(attentionBias, forKey: .attentionBias)
            try c.encode(mlpBias, forKey: .mlpBias)
        }
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenId) } else if !eosTokenIds.isEmpty { try c.encode(eosTokenIds, forKey: .eosTokenId) }
        try c.encodeIfPresent(torchDtype, forKey: .torchDtype)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encodeIfPresent(useSlidingWindow, forKey: .useSlidingWindow)
        try c.encodeIfPresent(transformersVersion, forKey: .transformersVersion)
    }

    /// `rope_scaling` (or `rope_parameters`): null, absent or `{"rope_type": "default"}` mean none, and so does
    /// a `rope_parameters` without a type.
    private static func decodeRopeScaling(_ c: KeyedDecodingContainer<CodingKeys>, key: CodingKeys) throws -> RopeScaling? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        let probe = try c.nestedContainer(keyedBy: RopeScaling.CodingKeys.self, forKey: key)
        let typeKeys = [RopeScaling.CodingKeys.ropeType, .type].filter { probe.contains($0) }
        if key == .ropeParameters && typeKeys.isEmpty { return nil }
        for typeKey in typeKeys where (try? probe.decode(String.self, forKey: typeKey)) == "default" { return nil }
        return try c.decodeLocated(RopeScaling.self, forKey: key)
    }

    /// An integer or a list of integers (null or absent: empty).
    private static func decodeTokenIds(_ c: KeyedDecodingContainer<CodingKeys>, forKey key: CodingKeys) throws -> [Int] {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return [] }
        if let one = try? c.decodeLocated(Int.self, forKey: key) { return [one] }
        if let many = try? c.decodeLocated([Int].self, forKey: key) { return many }
        throw DecodingError.typeMismatch(Int.self, .init(codingPath: c.codingPath + [key], debugDescription: "expected an integer or a list of integers"))
    }
}
