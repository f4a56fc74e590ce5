import LancetTensor

/// How calibration window starts are drawn from the token stream; both draw uniformly from
/// `0...(tokens − length − 1)`, with different generators.
public enum CalibrationSampler: String, Sendable, CaseIterable, Codable {
    /// Lancet's own seeded generator (xoshiro256**, `SeededGenerator`): the default.
    case lancet
    /// CPython's `random.seed(seed)` then `random.randint(0, tokens − length − 1)` per window — the draw of
    /// Wanda's and SparseGPT's reference code and `../shared/tools/reference-prune`, to calibrate on exactly
    /// the windows a Python run used.
    case python

    /// `samples` start offsets for windows of `length` tokens in a stream of `tokens` tokens.
    public func starts(samples: Int, tokens: Int, length: Int, seed: UInt64) -> [Int] {
        switch self {
        case .lancet:
            var g = SeededGenerator(seed: seed)
            return (0..<samples).map { _ in g.nextIndex(below: tokens - length) }
        case .python:
            var g = PythonRandom(seed: seed)
            return (0..<samples).map { _ in g.integer(in: 0...(tokens - length - 1)) }
        }
    }
}
