import LancetTensor

/// How much each FFN channel contributes to the FFN's output over some tokens: the root mean square of its gated
/// activation times the norm of its down-projection column, `rms_t(a_tc) · ‖down[:, c]‖` — the norm of the channel's
/// term in the down projection per token. What the predictors read over a prompt and predict over its continuation.
public enum ChannelContribution {
    /// ‖down[:, c]‖ for every column of a `[hidden, width]` down projection.
    public static func columnNorms(_ down: Tensor) -> [Double] { down.columnSquaredNorms().map { $0.squareRoot() } }

    /// `rms_{t ∈ rows}(a_tc) · columnNorms[c]` for every channel of the gated activations `a` `[tokens, width]`
    /// (zeros for no rows).
    public static func rms(_ a: Tensor, rows: Range<Int>, columnNorms: [Double]) -> [Double] {
        let width = a.shape[1]
        var squares = [Double](repeating: 0, count: width)
        a.withUnsafeBufferPointer { p in
            for r in rows {
                let row = p.baseAddress! + r * width
                for c in 0..<width { squares[c] += Double(row[c]) * Double(row[c]) }
            }
        }
        let n = Double(max(rows.count, 1))
        return (0..<width).map { (squares[$0] / n).squareRoot() * columnNorms[$0] }
    }

    /// The `keep` channels of largest score (ties: the lower channel), in ascending channel order.
    public static func top(_ scores: [Double], keep: Int) -> [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(keep).sorted()
    }

    /// |A ∩ B| / |A ∪ B| of two channel sets (1 for two empty sets).
    public static func jaccard(_ a: [Int], _ b: [Int]) -> Double {
        let x = Set(a), y = Set(b)
        let union = x.union(y).count
        return union == 0 ? 1 : Double(x.intersection(y).count) / Double(union)
    }
}
