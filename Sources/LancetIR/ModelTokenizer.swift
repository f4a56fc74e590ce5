/// What the IR needs of a tokenizer: LancetIO's `Tokenizer` conforms; the IR does not depend on IO.
public protocol ModelTokenizer: AnyObject, Sendable {
    /// Token ids of `text`, with BOS/EOS added as the model's metadata says when `addSpecialTokens`.
    func encodeText(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32]
    /// The text of `ids`.
    func decodeText(_ ids: [Int32]) -> String
    /// The raw bytes of `ids` (for streaming output that may split a UTF-8 character).
    func decodeTokenBytes(_ ids: [Int32]) -> [UInt8]
    /// Beginning-of-sequence token id, if the vocabulary has one.
    var beginToken: Int32? { get }
    /// End-of-sequence token id, if any.
    var endToken: Int32? { get }
    /// Ids that end a generation (EOS, end-of-turn).
    var stopTokens: Set<Int32> { get }
    /// The chat template (Jinja text) from the model's metadata, if any.
    var chatTemplateText: String? { get }
    /// Number of tokens in the vocabulary.
    var tokenCount: Int { get }
}
