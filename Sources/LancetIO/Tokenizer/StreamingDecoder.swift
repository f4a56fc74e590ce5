/// Decodes tokens one at a time during generation, emitting only complete UTF-8.
///
/// A token can end in the middle of a character (byte-level BPE splits emoji and CJK across
/// tokens), so the decoder keeps the bytes of an unfinished character until a later token
/// completes it. Bytes that can never start or continue a valid character are emitted at once,
/// as U+FFFD. Concatenating every `append` result and `finish()` gives `tokenizer.decode(ids)`.
///
/// ```swift
/// var stream = tokenizer.streamingDecoder()
/// for id in generated { print(stream.append(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    /// The tokenizer whose pieces are decoded.
    public let tokenizer: Tokenizer
    /// Whether control and unknown tokens render as nothing.
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    private var isFirst = true

    /// A decoder for `tokenizer`'s tokens.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token and returns the text it completes (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        append(contentsOf: [id])
    }

    /// Adds tokens and returns the text they complete (possibly empty).
    public mutating func append(contentsOf ids: [Int32]) -> String {
        guard !ids.isEmpty else { return "" }
        if isFirst {
            // The first token may lose a SentencePiece prefix space, exactly as in `decode`.
            pending.append(contentsOf: tokenizer.decodeBytes(ids, skipSpecialTokens: skipSpecialTokens))
        } else {
            for id in ids { pending.append(contentsOf: renderVerbatim(id)) }
        }
        isFirst = false
        let cut = Self.completePrefixLength(pending)
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is held back (an unfinished character, as U+FFFD) and resets the decoder.
    public mutating func finish() -> String {
        let text = String(decoding: pending, as: UTF8.self)
        pending = []
        isFirst = true
        return text
    }

    private func renderVerbatim(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokenizer.vocabularySize else { return [] }
        let type = tokenizer.tokenTypes[Int(id)]
        if skipSpecialTokens && (type == .control || type == .unknown) { return [] }
        return tokenizer.pieces[Int(id)]
    }

    /// The length of the longest prefix of `bytes` that does not end inside a character that later
    /// bytes could still complete: a trailing valid-so-far prefix of a multi-byte sequence is held back.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // The start of a possibly unfinished sequence is at most 3 bytes from the end.
        var start = n - 1
        while start >= 0 && start >= n - 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0 else { return n }
        let lead = bytes[start]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return n
        }
        let have = n - start
        guard have < need else { return n }
        // Are the continuation bytes present so far valid for this lead (UTF-8's second-byte ranges)?
        if have >= 2 {
            let b1 = bytes[start + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(b1)
            case 0xED: ok = (0x80...0x9F).contains(b1)
            case 0xF0: ok = (0x90...0xBF).contains(b1)
            case 0xF4: ok = (0x80...0x8F).contains(b1)
            default: ok = true
            }
            if !ok { return n }
        }
        return start
    }
}
