/// Model-wide settings: what the blocks share and what export needs to describe the model.
public struct ModelConfig: Sendable, Equatable {
    /// The architecture family, e.g. `llama`.
    public var architecture: String
    /// A human-readable model name (from the file's metadata).
    public var name: String
    /// Width of the residual stream.
    public var hiddenSize: Int
    /// Vocabulary size (rows of the embedding).
    public var vocabularySize: Int
    /// The longest context the model was trained for.
    public var contextLength: Int
    /// ε of the RMS norms.
    public var normEpsilon: Double
    /// Rotary embedding settings shared by the attention layers.
    public var rope: RopeConfig

    /// Creates a configuration.
    public init(architecture: String, name: String, hiddenSize: Int, vocabularySize: Int, contextLength: Int, normEpsilon: Double, rope: RopeConfig) {
        self.architecture = architecture
        self.name = name
        self.hiddenSize = hiddenSize
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.normEpsilon = normEpsilon
        self.rope = rope
    }
}
