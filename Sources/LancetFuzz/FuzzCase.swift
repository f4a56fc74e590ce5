/// The six kinds of hostile input the fuzz suite generates.
public enum FuzzKind: String, CaseIterable, Sendable {
    /// A whole GGUF model file.
    case gguf
    /// The header (and data ranges) of a Hugging Face folder's `model.safetensors`.
    case safetensors
    /// A Hugging Face folder's `config.json`.
    case config
    /// A Hugging Face folder's `tokenizer.json`.
    case tokenizer
    /// A YAML recipe, validated against a tiny model.
    case recipe
    /// A Lancet archive in a safetensors file: its container, IR, aliases, provenance, tokenizer and masks.
    case archive
}

/// What a case's input is allowed to do.
public enum FuzzExpectation: String, Sendable {
    /// The input is invalid by construction (truncated, overlapping, out of range, …): it must be refused.
    case mustRefuse = "must-refuse"
    /// The input may or may not be valid (random byte flips, neutral edits): it must be refused cleanly or load.
    case either
}

/// One generated input: the files of a case folder and the commands a user would run on it.
public struct FuzzCase: Sendable {
    /// The input kind.
    public var kind: FuzzKind
    /// The case's number within its kind (its seed is derived from the campaign seed and this number).
    public var index: Int
    /// The mutations applied, in words (e.g. `tensor-offset-shared(blk.0.attn_q.weight)`).
    public var mutations: [String]
    /// Whether the result must be refused.
    public var expectation: FuzzExpectation
    /// Files to write into the case folder: relative path → bytes.
    public var files: [String: [UInt8]]
    /// `lancet` argument lists to run in the case folder, in order; every one must agree on accept/refuse.
    public var commands: [[String]]

    /// A case with one file set and commands.
    public init(kind: FuzzKind, index: Int, mutations: [String], expectation: FuzzExpectation,
                files: [String: [UInt8]], commands: [[String]]) {
        self.kind = kind
        self.index = index
        self.mutations = mutations
        self.expectation = expectation
        self.files = files
        self.commands = commands
    }

    /// One line naming the case for reports: `gguf#17 must-refuse tensor-offset-shared(…)`.
    public var label: String { "\(kind.rawValue)#\(index) \(expectation.rawValue) \(mutations.joined(separator: " + "))" }
}

/// How a case ended.
public enum FuzzVerdict: String, Sendable, CaseIterable {
    /// Every command loaded the input and exited 0 (allowed for `.either` cases only).
    case accepted
    /// Every command refused the input with exit code 1 or 64 and a message.
    case refused
    /// A command was killed by a signal (trap, abort, segfault) or printed a Swift fatal error.
    case crash
    /// A command exceeded the case's time limit and was killed.
    case hang
    /// A command's peak memory exceeded the bound.
    case overMemory = "over-memory"
    /// A `.mustRefuse` input was accepted.
    case silentAccept = "silent-accept"
    /// A file was created, changed or removed in the case folder (or a temporary file left behind).
    case leftBehind = "left-behind"
    /// The commands disagreed (e.g. `inspect` accepted what `eval` refused), or an exit code outside 0/1/64.
    case inconsistent

    /// Whether this verdict is a failure of Lancet.
    public var isFailure: Bool { self != .accepted && self != .refused }
}
