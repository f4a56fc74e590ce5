import LancetIR
import LancetSurgery
import LancetTensor

/// Which weights a score-based pruning pass removes: the lowest-scoring fraction of each row or of the
/// whole layer (unstructured), or the lowest `M − N` of every group of `M` consecutive inputs in each row
/// (N:M semi-structured, e.g. 2:4 keeps 2 of every 4).
public enum SparsityPattern: Sendable, Equatable, CustomStringConvertible {
    /// A fraction of each output row (`perRow`) or of the whole layer.
    case unstructured(sparsity: Double, perRow: Bool)
    /// Keep `n` of every `m` consecutive input weights of each row.
    case nOfM(n: Int, m: Int)

    /// Parses `pattern` (`unstructured` or `N:M`) with `sparsity` and `scope` (`row` or `layer`).
    public static func parse(pattern: String, sparsity: Double, scope: String) throws -> SparsityPattern {
        guard scope == "row" || scope == "layer" else { throw PassOptionError("scope", "must be 'row' or 'layer', got '\(scope)'") }
        if pattern == "unstructured" {
            guard sparsity >= 0 && sparsity < 1 else { throw PassOptionError("sparsity", "must be in [0, 1), got \(sparsity)") }
            return .unstructured(sparsity: sparsity, perRow: scope == "row")
        }
        let parts = pattern.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), n >= 1, m >= 2, n < m else {
            throw PassOptionError("pattern", "must be 'unstructured' or N:M with 1 ≤ N < M (e.g. 2:4), got '\(pattern)'")
        }
        return .nOfM(n: n, m: m)
    }

    public var description: String {
        switch self {
        case let .unstructured(s, perRow): "\(s * 100)% unstructured (per \(perRow ? "row" : "layer"))"
        case let .nOfM(n, m): "\(n):\(m)"
        }
    }

    /// The fraction of weights removed.
    public var sparsity: Double {
        switch self {
        case let .unstructured(s, _): s
        case let .nOfM(n, m): Double(m - n) / Double(m)
        }
    }

    /// Checks that a `[rows, columns]` weight can take the pattern (N:M needs columns divisible by M).
    public func check(columns: Int, weight: String) throws {
        if case let .nOfM(_, m) = self, columns % m != 0 {
            throw PassOptionError("pattern", "\(self) needs input widths divisible by \(m); '\(weight)' has \(columns)")
        }
    }

    /// Checks every linear that `targets` selects in `model` (see ``check(columns:weight:)``).
    public func check(model: Model, targets: TargetSelection) throws {
        for (i, block) in model.blocks.enumerated() {
            for (_, op) in targets.linears(in: block, index: i) {
                try check(columns: block.parameters[op.weight!]!.shape[1], weight: Model.path(block: i, op.weight!))
            }
        }
    }

    /// The mask keeping the highest `scores` (`[rows, columns]`) under this pattern. Ties keep the later index.
    public func mask(scores: Tensor) -> Mask {
        let (rows, cols) = (scores.shape[0], scores.shape[1])
        var keep = [UInt8](repeating: 1, count: rows * cols)
        scores.withUnsafeBufferPointer { s in
            switch self {
            case let .unstructured(sparsity, true):
                let k = Int(Double(cols) * sparsity)
                guard k > 0 else { break }
                keep.withUnsafeMutableBufferPointer { kp in
                    let keepBase = kp.baseAddress!
                    parallelFor(0..<rows, minimumChunkSize: 16) { range in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                        defer { scratch.deallocate() }
                        for r in range {
                            LowestSelection.mark(s.baseAddress! + r * cols, count: cols, k: k, scratch: scratch) { keepBase[r * cols + $0] = 0 }
                        }
                    }
                }
            case let .unstructured(sparsity, false):
                let k = Int(Double(rows * cols) * sparsity)
                LowestSelection.mark(s.baseAddress!, count: rows * cols, k: k) { keep[$0] = 0 }
            case let .nOfM(n, m):
                var group = [Int](repeating: 0, count: m)
                for r in 0..<rows {
                    for g in stride(from: 0, to: cols, by: m) {
                        let base = r * cols + g
                        for j in 0..<m { group[j] = j }
                        group.sort { s[base + $0] != s[base + $1] ? s[base + $0] < s[base + $1] : $0 < $1 }
                        for j in group.prefix(m - n) { keep[base + j] = 0 }
                    }
                }
            }
        }
        return Mask(shape: scores.shape, keep: keep)
    }
}
