/// An error building a tokenizer. Every message names the source file and the offending field.
///
/// Example: `model.gguf: tokenizer.ggml.merges[17]: 'Ġ xq' refers to unknown token 'xq'`.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file the tokenizer was read from (a GGUF file, `tokenizer.json`, or a caller-chosen label).
    public let source: String
    /// The metadata key or JSON path concerned, e.g. `tokenizer.ggml.merges[17]` or `model.vocab`.
    public let field: String
    /// What is wrong, in words a user can act on.
    public let reason: String

    /// An error about `field` of `source`.
    public init(_ source: String, _ field: String, _ reason: String) {
        self.source = source
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(source): \(field): \(reason)" }
}
