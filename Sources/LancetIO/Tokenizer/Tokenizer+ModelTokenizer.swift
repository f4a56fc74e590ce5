import LancetIR

/// The IR's view of a tokenizer (the IR does not depend on LancetIO).
extension Tokenizer: ModelTokenizer {
    public func encodeText(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, parseSpecial: parseSpecial)
    }

    public func decodeText(_ ids: [Int32]) -> String { decode(ids) }

    public func decodeTokenBytes(_ ids: [Int32]) -> [UInt8] { decodeBytes(ids) }

    public var beginToken: Int32? { bos }

    public var endToken: Int32? { eos }

    /// EOS plus the control tokens that end a turn in the chat formats Lancet renders.
    public var stopTokens: Set<Int32> {
        var stops = Set(eos.map { [$0] } ?? [])
        for text in ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>"] {
            if let id = id(of: text), tokenTypes[Int(id)] == .control { stops.insert(id) }
        }
        return stops
    }

    public var chatTemplateText: String? { chatTemplate }

    public var tokenCount: Int { vocabularySize }
}
