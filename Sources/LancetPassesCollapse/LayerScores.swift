import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// The calibration scores that choose which blocks to remove, each from one streamed sweep (`ModelPassContext.sweep`,
/// one chunk of windows at a time).
enum LayerScores {
    /// Per block, ShortGPT's block influence 1 − mean over tokens of cos(input row, output row).
    static func blockInfluence(of model: Model, context: ModelPassContext) throws -> [Double] {
        var sums = [Double](repeating: 0, count: model.blocks.count)
        var tokens = [Int](repeating: 0, count: model.blocks.count)
        try context.sweep(model) { chunk in
            sums[chunk.block] += cosineSum(chunk.input, chunk.output)
            tokens[chunk.block] += chunk.input.shape[0]
        }
        return zip(sums, tokens).map { 1 - $0 / Double(max($1, 1)) }
    }

    /// Per start ℓ (0…blocks−span), the mean over tokens of arccos(cos(x_ℓ, x_{ℓ+span}))/π between the hidden states
    /// entering block ℓ and leaving block ℓ+span−1. A chunk's block boundaries are held until its last block.
    static func angularDistances(of model: Model, span: Int, context: ModelPassContext) throws -> [Double] {
        let n = model.blocks.count
        precondition(span >= 1 && span <= n, "angularDistances: span \(span) of \(n) blocks")
        var sums = [Double](repeating: 0, count: n - span + 1)
        var tokens = 0
        var boundaries: [Tensor] = []
        try context.sweep(model) { chunk in
            if chunk.block == 0 { boundaries = [chunk.input] }
            boundaries.append(chunk.output)
            guard chunk.block == n - 1 else { return }
            for start in sums.indices { sums[start] += angleSum(boundaries[start], boundaries[start + span]) }
            tokens += chunk.input.shape[0]
            boundaries = []
        }
        return sums.map { $0 / Double(max(tokens, 1)) }
    }

    /// The indices of the `count` lowest scores (ties: the lower index), ascending.
    static func lowest(_ scores: [Double], count: Int) -> [Int] {
        scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(count).sorted()
    }

    /// Σ over rows of cos(a_r, b_r).
    static func cosineSum(_ a: Tensor, _ b: Tensor) -> Double {
        rowCosines(a, b).reduce(0, +)
    }

    /// Σ over rows of arccos(cos(a_r, b_r))/π.
    static func angleSum(_ a: Tensor, _ b: Tensor) -> Double {
        rowCosines(a, b).reduce(0) { $0 + Foundation.acos(min(max($1, -1), 1)) / Double.pi }
    }

    /// cos(a_r, b_r) of every row, in Double.
    static func rowCosines(_ a: Tensor, _ b: Tensor) -> [Double] {
        let (rows, width) = (a.shape[0], a.shape[1])
        precondition(b.shape == a.shape, "rowCosines: \(a.shape) and \(b.shape)")
        return a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                (0..<rows).map { r in
                    var dot = 0.0, xx = 0.0, yy = 0.0
                    for c in (r * width)..<((r + 1) * width) {
                        dot += Double(x[c]) * Double(y[c])
                        xx += Double(x[c]) * Double(x[c])
                        yy += Double(y[c]) * Double(y[c])
                    }
                    return dot / max((xx * yy).squareRoot(), 1e-30)
                }
            }
        }
    }
}
