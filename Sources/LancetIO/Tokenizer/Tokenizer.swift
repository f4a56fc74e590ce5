/// A BPE tokenizer that reproduces llama.cpp's token ids: byte-level BPE (GPT-2 style: SmolLM2,
/// Llama 3, Qwen 2) and SentencePiece-style BPE (Llama 2).
///
/// Build one from a GGUF file (`Tokenizer(gguf:)`), a Hugging Face folder
/// (`Tokenizer(huggingFaceFolder:)`), or a `TokenizerSpec`. A tokenizer is immutable and can be
/// shared across threads.
///
/// ```swift
/// let tok = try Tokenizer(gguf: GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let ids = tok.encode("<|im_start|>user\nHi<|im_end|>")   // control tokens recognised
/// let text = tok.decode(ids)                               // == the input
/// ```
public final class Tokenizer: Sendable {
    /// The algorithm.
    public let kind: TokenizerKind
    /// The pre-tokenizer (byte-level BPE); nil for SentencePiece BPE, which does not split words.
    public let preTokenizer: PreTokenizer?
    /// Token texts by id, in the vocabulary's own spelling (`Ġthe`, `▁the`, `<|im_start|>`).
    public let tokens: [String]
    /// Token roles by id.
    public let tokenTypes: [TokenType]
    /// Beginning-of-sequence token id.
    public let bos: Int32?
    /// End-of-sequence token id.
    public let eos: Int32?
    /// Unknown token id.
    public let unk: Int32?
    /// Padding token id.
    public let pad: Int32?
    /// Whether `encode` prepends `bos` when asked to add special tokens.
    public let addBOS: Bool
    /// Whether `encode` appends `eos` when asked to add special tokens.
    public let addEOS: Bool
    /// SentencePiece: whether text fragments at the start or after a special token get a leading space.
    public let addSpacePrefix: Bool
    /// Byte-level BPE: whether a word that is itself a token skips merging (Llama 3).
    public let ignoreMerges: Bool
    /// The Jinja chat template from the source, if any.
    public let chatTemplate: String?
    /// The merge rules in rank order, as the source gave them (nil when merges derive from `scores`);
    /// kept so that exports can write `tokenizer.ggml.merges` and `tokenizer.json`.
    public let merges: [MergeRule]?
    /// SentencePiece scores by id, as the source gave them (nil when it had none); kept for export.
    public let scores: [Float]?
    /// Special tokens that swallow whitespace to their left when matched (Hugging Face `lstrip`).
    public let leftStripped: Set<Int32>
    /// Special tokens that swallow whitespace to their right when matched (Hugging Face `rstrip`).
    public let rightStripped: Set<Int32>
    /// The file the tokenizer came from.
    public let source: String

    let idByText: [String: Int32]
    /// The bytes each token renders as in `decode`.
    let pieces: [[UInt8]]
    /// Byte-level: the token of each byte's mapped character; SentencePiece: the `<0xNN>` token. -1 if absent.
    let byteTokens: [Int32]
    let merger: BPEMerger
    /// Tokens matched in raw text before pre-tokenisation, longest text first (llama.cpp's order).
    let specialTokens: [SpecialToken]

    struct SpecialToken: Sendable {
        let id: Int32
        let bytes: [UInt8]
        let type: TokenType
        let leftStrip: Bool
        let rightStrip: Bool
    }

    /// Number of tokens in the vocabulary.
    public var vocabularySize: Int { tokens.count }

    /// The vocabulary spelling of token `id` (precondition: `0 <= id < vocabularySize`).
    public func token(_ id: Int32) -> String { tokens[Int(id)] }

    /// The id of the token spelled `text` in the vocabulary's own spelling, or nil.
    public func id(of text: String) -> Int32? { idByText[text] }

    /// The bytes token `id` decodes to (control tokens render their text).
    public func tokenBytes(_ id: Int32) -> [UInt8] { pieces[Int(id)] }

    /// Validates `spec` and builds the tokenizer. Throws `TokenizerError` naming the source and field
    /// for an empty vocabulary, mismatched array lengths, duplicate tokens, merges that refer to
    /// unknown tokens, out-of-range special ids or an unsupported pre-tokenizer.
    public init(spec: TokenizerSpec) throws {
        let src = spec.source
        let f = spec.fieldNames
        guard !spec.tokens.isEmpty else { throw TokenizerError(src, f.tokens, "the vocabulary is empty") }
        guard spec.tokens.count < Int(Int32.max) else { throw TokenizerError(src, f.tokens, "too many tokens") }
        guard spec.tokenTypes.count == spec.tokens.count else {
            throw TokenizerError(src, f.tokenTypes, "has \(spec.tokenTypes.count) entries for \(spec.tokens.count) tokens")
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(spec.tokens.count)
        for (i, t) in spec.tokens.enumerated() {
            // llama.cpp keeps the last id for a repeated text; so does this map.
            ids[t] = Int32(i)
        }
        for (name, v) in [("bos", spec.bos), ("eos", spec.eos), ("unk", spec.unk), ("pad", spec.pad)] {
            if let v, v < 0 || Int(v) >= spec.tokens.count {
                throw TokenizerError(src, name, "token id \(v) is outside the vocabulary (0..<\(spec.tokens.count))")
            }
        }

        kind = spec.kind
        tokens = spec.tokens
        tokenTypes = spec.tokenTypes
        bos = spec.bos
        eos = spec.eos
        unk = spec.unk
        pad = spec.pad
        addBOS = spec.addBOS && spec.bos != nil
        addEOS = spec.addEOS && spec.eos != nil
        addSpacePrefix = spec.kind == .sentencePieceBPE && spec.addSpacePrefix
        ignoreMerges = spec.ignoreMerges
        chatTemplate = spec.chatTemplate
        merges = spec.merges
        scores = spec.scores
        leftStripped = spec.leftStripped
        rightStripped = spec.rightStripped
        source = src
        idByText = ids

        switch spec.kind {
        case .byteLevelBPE:
            guard let pre = PreTokenizer(name: spec.preTokenizer) else {
                throw TokenizerError(src, "pre-tokenizer", "unsupported pre-tokenizer '\(spec.preTokenizer)' (supported: \(PreTokenizer.supportedNames.joined(separator: ", ")))")
            }
            preTokenizer = pre
            guard let merges = spec.merges else { throw TokenizerError(src, f.merges, "missing: byte-level BPE needs merge rules") }
            merger = try Self.byteLevelMerger(merges, ids, src, f.merges)
            byteTokens = ByteUnicodeMapping.scalarForByte.map { ids[String(Character($0))] ?? -1 }
        case .sentencePieceBPE:
            preTokenizer = nil
            if let merges = spec.merges {
                merger = try Self.byteLevelMerger(merges, ids, src, f.merges)
            } else {
                guard let scores = spec.scores else {
                    throw TokenizerError(src, f.scores, "missing: SentencePiece BPE needs scores or merge rules")
                }
                guard scores.count == spec.tokens.count else {
                    throw TokenizerError(src, f.scores, "has \(scores.count) entries for \(spec.tokens.count) tokens")
                }
                merger = Self.scoreMerger(spec.tokens, scores, ids)
            }
            byteTokens = (0..<256).map { b in
                ids["<0x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) + ">"] ?? -1
            }
        }

        pieces = zip(spec.tokens, spec.tokenTypes).map { Self.piece($0, $1, spec.kind) }

        var specials: [SpecialToken] = []
        for (i, t) in spec.tokenTypes.enumerated() where t.isSpecial && !spec.tokens[i].isEmpty {
            let id = Int32(i)
            specials.append(SpecialToken(
                id: id, bytes: Array(spec.tokens[i].utf8), type: t,
                leftStrip: spec.leftStripped.contains(id), rightStrip: spec.rightStripped.contains(id)))
        }
        // llama.cpp sorts by text length, longest first (its sort is unstable; ties here go by id).
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        specialTokens = specials
    }

    /// The merge table of explicit rules, in rank order: both pieces and their fusion must be tokens.
    private static func byteLevelMerger(
        _ merges: [MergeRule], _ ids: [String: Int32], _ src: String, _ field: String
    ) throws -> BPEMerger {
        var table = PairMergeTable(capacity: merges.count)
        for (rank, m) in merges.enumerated() {
            guard let a = ids[m.left] else {
                throw TokenizerError(src, "\(field)[\(rank)]", "'\(m.left) \(m.right)' refers to unknown token '\(m.left)'")
            }
            guard let b = ids[m.right] else {
                throw TokenizerError(src, "\(field)[\(rank)]", "'\(m.left) \(m.right)' refers to unknown token '\(m.right)'")
            }
            guard let c = ids[m.left + m.right] else {
                throw TokenizerError(src, "\(field)[\(rank)]", "'\(m.left) \(m.right)' makes '\(m.left + m.right)', which is not a token")
            }
            table.insert(a, b, .init(rank: Int32(rank), result: c))
        }
        return BPEMerger(table: table)
    }

    /// SentencePiece merges as llama.cpp applies them: any two adjacent pieces whose concatenation
    /// is a token fuse, the token with the highest score first (equal scores share a rank, so the
    /// leftmost pair goes first).
    private static func scoreMerger(_ tokens: [String], _ scores: [Float], _ ids: [String: Int32]) -> BPEMerger {
        let distinct = Array(Set(scores)).sorted(by: >)
        var rankOfScore: [Float: Int32] = [:]
        for (i, s) in distinct.enumerated() { rankOfScore[s] = Int32(i) }
        var table = PairMergeTable(capacity: tokens.count * 4)
        for (i, t) in tokens.enumerated() {
            let chars = Array(t.unicodeScalars)
            guard chars.count >= 2 else { continue }
            let rank = rankOfScore[scores[i]]!
            for cut in 1..<chars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: chars[..<cut])
                r.append(contentsOf: chars[cut...])
                if let a = ids[String(l)], let b = ids[String(r)] {
                    table.insert(a, b, .init(rank: rank, result: Int32(i)))
                }
            }
        }
        return BPEMerger(table: table)
    }

    /// What a token renders as, following llama.cpp's `token_to_piece` with special rendering on.
    private static func piece(_ text: String, _ type: TokenType, _ kind: TokenizerKind) -> [UInt8] {
        switch type {
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        case .normal:
            switch kind {
            case .byteLevelBPE:
                // llama.cpp writes "[UNK_BYTE_…]" for characters outside the byte map; keep their UTF-8.
                var out: [UInt8] = []
                for s in text.unicodeScalars {
                    if let b = ByteUnicodeMapping.byte(for: s) { out.append(b) } else { out.append(contentsOf: String(s).utf8) }
                }
                return out
            case .sentencePieceBPE:
                return Array(text.replacingScalar("\u{2581}", with: " ").utf8)
            }
        case .byte:
            if kind == .sentencePieceBPE, let b = parseByteToken(text) { return [b] }
            return []
        case .undefined, .unused:
            return []
        }
    }

    /// The byte of a `<0xNN>` token.
    static func parseByteToken(_ text: String) -> UInt8? {
        let u = Array(text.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }
}

extension String {
    /// `self` with every `target` scalar replaced by `replacement` (Foundation-free, scalar-exact).
    func replacingScalar(_ target: Unicode.Scalar, with replacement: Unicode.Scalar) -> String {
        var v = String.UnicodeScalarView()
        for s in unicodeScalars { v.append(s == target ? replacement : s) }
        return String(v)
    }
}
