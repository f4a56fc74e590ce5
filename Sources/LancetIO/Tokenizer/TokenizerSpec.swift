/// The tokenisation algorithm a vocabulary uses.
public enum TokenizerKind: String, Sendable, CaseIterable {
    /// GPT-2 style byte-level BPE: bytes mapped to printable characters, regex pre-tokenisation,
    /// merges applied by rank (SmolLM2, Llama 3, Qwen 2, StarCoder). GGUF `tokenizer.ggml.model` "gpt2".
    case byteLevelBPE
    /// SentencePiece-style BPE: spaces replaced by `▁`, pieces merged by score, unknown characters
    /// spelled with `<0xNN>` byte tokens (Llama 2). GGUF `tokenizer.ggml.model` "llama".
    case sentencePieceBPE
}

/// The role of a token, with GGUF's numbering (`tokenizer.ggml.token_type`).
public enum TokenType: Int32, Sendable, CaseIterable {
    /// No type recorded; rendered as nothing.
    case undefined = 0
    /// An ordinary vocabulary piece.
    case normal = 1
    /// The unknown token (`<unk>`); treated like a control token.
    case unknown = 2
    /// A control token such as `<|im_start|>`: matched in text only when special parsing is on.
    case control = 3
    /// A user-defined token: always matched in text before pre-tokenisation.
    case userDefined = 4
    /// A reserved, unused slot; rendered as nothing.
    case unused = 5
    /// A SentencePiece byte token `<0xNN>`.
    case byte = 6

    /// Whether llama.cpp matches this token's text before pre-tokenisation
    /// (control and unknown only when special parsing is requested).
    var isSpecial: Bool { self == .control || self == .userDefined || self == .unknown }
}

/// One BPE merge rule: the two pieces that fuse, in vocabulary spelling.
public struct MergeRule: Sendable, Equatable {
    /// The left piece.
    public var left: String
    /// The right piece.
    public var right: String

    /// A rule fusing `left` and `right`.
    public init(_ left: String, _ right: String) {
        self.left = left
        self.right = right
    }
}

/// A neutral description of a tokenizer: what GGUF metadata and Hugging Face `tokenizer.json`
/// both reduce to. `Tokenizer(spec:)` validates it and builds the encoder.
public struct TokenizerSpec: Sendable {
    /// The file the description came from, used in error messages.
    public var source: String
    /// The algorithm.
    public var kind: TokenizerKind
    /// Token texts by id, in the vocabulary's spelling (byte-level characters for byte-level BPE).
    public var tokens: [String]
    /// Token roles by id; same count as `tokens`.
    public var tokenTypes: [TokenType]
    /// SentencePiece scores by id (higher merges first); nil for byte-level BPE.
    public var scores: [Float]?
    /// Merge rules in rank order (lowest rank merges first). Required for byte-level BPE; for
    /// SentencePiece BPE, when nil the merge order is derived from `scores` as llama.cpp does.
    public var merges: [MergeRule]?
    /// llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`), e.g. "smollm", "llama-bpe", "qwen2".
    public var preTokenizer: String
    /// Beginning-of-sequence token id.
    public var bos: Int32?
    /// End-of-sequence token id.
    public var eos: Int32?
    /// Unknown token id.
    public var unk: Int32?
    /// Padding token id.
    public var pad: Int32?
    /// Whether `encode(_:addSpecialTokens: true)` prepends `bos`.
    public var addBOS: Bool
    /// Whether `encode(_:addSpecialTokens: true)` appends `eos`.
    public var addEOS: Bool
    /// SentencePiece only: prefix each text fragment at the start or after a special token with a space.
    public var addSpacePrefix: Bool
    /// Byte-level BPE only: emit a pre-tokenised word whole when it is itself a token (Llama 3).
    public var ignoreMerges: Bool
    /// Special tokens that swallow whitespace to their left when matched (Hugging Face `lstrip`).
    public var leftStripped: Set<Int32>
    /// Special tokens that swallow whitespace to their right when matched (Hugging Face `rstrip`).
    public var rightStripped: Set<Int32>
    /// The Jinja chat template, if the source has one.
    public var chatTemplate: String?
    /// Field names used in error messages: where the tokens, types and merges live in `source`.
    public var fieldNames: (tokens: String, tokenTypes: String, merges: String, scores: String)

    /// A description with the given vocabulary and defaults for everything else.
    public init(
        source: String, kind: TokenizerKind, tokens: [String], tokenTypes: [TokenType]? = nil,
        scores: [Float]? = nil, merges: [MergeRule]? = nil, preTokenizer: String = "default",
        bos: Int32? = nil, eos: Int32? = nil, unk: Int32? = nil, pad: Int32? = nil,
        addBOS: Bool = false, addEOS: Bool = false, addSpacePrefix: Bool = false, ignoreMerges: Bool = false,
        leftStripped: Set<Int32> = [], rightStripped: Set<Int32> = [], chatTemplate: String? = nil,
        fieldNames: (tokens: String, tokenTypes: String, merges: String, scores: String) =
            ("tokens", "token_type", "merges", "scores")
    ) {
        self.source = source
        self.kind = kind
        self.tokens = tokens
        self.tokenTypes = tokenTypes ?? Array(repeating: .normal, count: tokens.count)
        self.scores = scores
        self.merges = merges
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.unk = unk
        self.pad = pad
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.ignoreMerges = ignoreMerges
        self.leftStripped = leftStripped
        self.rightStripped = rightStripped
        self.chatTemplate = chatTemplate
        self.fieldNames = fieldNames
    }
}
