/// The `rope_scaling` object of a Hugging Face config: how RoPE frequencies are stretched for long context.
///
/// The type is read from `rope_type` (current transformers) or `type` (older files) and written as
/// `rope_type`. `{"rope_type": "default"}` means no scaling and is read by `LlamaFamilyConfig` as nil.
public struct RopeScaling: Codable, Equatable, Sendable {
    /// The scaling methods of the Llama family that Lancet understands.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Positions divided by `factor` (position interpolation).
        case linear
        /// NTK-aware scaling whose base grows with the sequence length.
        case dynamic
        /// Llama 3.1's piecewise frequency scaling (`factor`, `low_freq_factor`, `high_freq_factor`, `original_max_position_embeddings`).
        case llama3
        /// YaRN (`factor`, optional `original_max_position_embeddings`, `beta_fast`, `beta_slow`, `attention_factor`).
        case yarn
    }

    /// The method.
    public var kind: Kind
    /// The context extension factor (≥ 1).
    public var factor: Double
    /// Llama 3: wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled fully.
    public var lowFreqFactor: Double?
    /// Llama 3: wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are not scaled.
    public var highFreqFactor: Double?
    /// The context length the model was pre-trained with.
    public var originalMaxPositionEmbeddings: Int?
    /// YaRN's fast boundary (default 32 in transformers).
    public var betaFast: Double?
    /// YaRN's slow boundary (default 1 in transformers).
    public var betaSlow: Double?
    /// YaRN's attention temperature factor.
    public var attentionFactor: Double?

    /// A scaling of the given kind; the optional parameters default to absent.
    public init(kind: Kind, factor: Double, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
                originalMaxPositionEmbeddings: Int? = nil, betaFast: Double? = nil, betaSlow: Double? = nil, attentionFactor: Double? = nil) {
        self.kind = kind
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.attentionFactor = attentionFactor
    }

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type"
        case type
        case factor
        case lowFreqFactor = "low_freq_factor"
        case highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case betaFast = "beta_fast"
        case betaSlow = "beta_slow"
        case attentionFactor = "attention_factor"
        /// Not part of `rope_scaling`; read by `LlamaFamilyConfig` from transformers 5's `rope_parameters`.
        case ropeTheta = "rope_theta"
    }

    /// Decodes and checks the parameters each kind needs.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let typeKey: CodingKeys = c.contains(.ropeType) ? .ropeType : .type
        guard c.contains(typeKey) else {
            throw DecodingError.keyNotFound(CodingKeys.ropeType, .init(codingPath: c.codingPath, debugDescription: "rope_type or type is required"))
        }
        let name = try c.decodeLocated(String.self, forKey: typeKey)
        guard let kind = Kind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(forKey: typeKey, in: c, debugDescription:
                "unsupported rope scaling '\(name)' (supported: default, \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.kind = kind
        factor = try c.decodeLocated(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeLocatedIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeLocatedIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeLocatedIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
        betaFast = try c.decodeLocatedIfPresent(Double.self, forKey: .betaFast)
        betaSlow = try c.decodeLocatedIfPresent(Double.self, forKey: .betaSlow)
        attentionFactor = try c.decodeLocatedIfPresent(Double.self, forKey: .attentionFactor)
        if kind == .llama3 {
            // transformers' _validate_llama3_parameters requires all three.
            for key in [CodingKeys.lowFreqFactor, .highFreqFactor, .originalMaxPositionEmbeddings] where !c.contains(key) {
                throw DecodingError.keyNotFound(key, .init(codingPath: c.codingPath, debugDescription: "required by llama3 rope scaling"))
            }
        }
    }

    /// The first inconsistent parameter, as (field relative to `rope_scaling`, problem), or nil.
    public func problem() -> (field: String, reason: String)? {
        guard factor.isFinite, factor >= 1 else { return ("factor", "must be a finite number ≥ 1, got \(factor)") }
        if let n = originalMaxPositionEmbeddings, n <= 0 { return ("original_max_position_embeddings", "must be positive, got \(n)") }
        if kind == .llama3 {
            guard let low = lowFreqFactor else { return ("low_freq_factor", "missing; required by llama3 rope scaling") }
            guard let high = highFreqFactor else { return ("high_freq_factor", "missing; required by llama3 rope scaling") }
            guard originalMaxPositionEmbeddings != nil else { return ("original_max_position_embeddings", "missing; required by llama3 rope scaling") }
            guard low > 0 else { return ("low_freq_factor", "must be positive, got \(low)") }
            guard high > low else { return ("high_freq_factor", "must be greater than low_freq_factor (\(low)), got \(high)") }
        }
        return nil
    }

    /// Encodes with `rope_type` and only the parameters that are set.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind.rawValue, forKey: .ropeType)
        try c.encode(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
        try c.encodeIfPresent(betaFast, forKey: .betaFast)
        try c.encodeIfPresent(betaSlow, forKey: .betaSlow)
        try c.encodeIfPresent(attentionFactor, forKey: .attentionFactor)
    }
}
