import LancetIR
import LancetTensor

/// Calibration windows as Wanda and SparseGPT draw them: the corpus's documents joined with a blank line,
/// tokenised without special tokens, and `samples` windows of `length` tokens starting at offsets drawn
/// uniformly from `0...(tokens − length − 1)` by `sampler` seeded with `seed`.
public struct CalibrationSet: Sendable {
    /// The token windows, `samples × length`.
    public let windows: [[Int32]]
    /// Tokens per window.
    public let length: Int
    /// The corpus file's SHA-256 and the seed, for provenance.
    public let dataSHA256: String
    /// The sampling seed.
    public let seed: UInt64
    /// The generator that drew the starts.
    public let sampler: CalibrationSampler
    /// Start offset of each window in the token stream.
    public let starts: [Int]

    /// Draws windows from `corpus`. The text gives `tokens − length` distinct windows (one per start
    /// offset); asking for more is refused before anything is allocated for them.
    public init(corpus: TextCorpus, tokenizer: any ModelTokenizer, samples: Int, length: Int, seed: UInt64,
                sampler: CalibrationSampler = .lancet) throws {
        precondition(samples >= 1 && length >= 2, "CalibrationSet: samples \(samples), length \(length)")
        let tokens = tokenizer.encodeText(corpus.joined(), addSpecialTokens: false, parseSpecial: false)
        guard tokens.count > length + 1 else {
            throw DataError.tooLittleText(path: corpus.path, reason: "\(tokens.count) tokens, fewer than one calibration window of \(length) + 1")
        }
        guard samples <= tokens.count - length else {
            throw DataError.tooLittleText(path: corpus.path, reason: "calibration.samples: \(samples) windows of \(length) tokens requested, the data gives at most "
                                          + "\(tokens.count - length) (\(tokens.count) tokens, one window per start offset)")
        }
        let starts = sampler.starts(samples: samples, tokens: tokens.count, length: length, seed: seed)
        self.windows = starts.map { Array(tokens[$0..<($0 + length)]) }
        self.starts = starts
        self.length = length
        self.dataSHA256 = corpus.sha256
        self.seed = seed
        self.sampler = sampler
    }

    /// Wraps windows that were drawn elsewhere (or synthesised for tests); every window must have the same
    /// length, at least 2 tokens. `starts` are recorded as unknown (−1).
    public init(windows: [[Int32]], seed: UInt64 = 0, dataSHA256: String = "") {
        precondition(!windows.isEmpty && windows[0].count >= 2 && windows.allSatisfy { $0.count == windows[0].count },
                     "CalibrationSet: windows must be non-empty and of one length ≥ 2")
        self.windows = windows
        self.starts = Array(repeating: -1, count: windows.count)
        self.length = windows[0].count
        self.dataSHA256 = dataSHA256
        self.seed = seed
        self.sampler = .lancet
    }
}
