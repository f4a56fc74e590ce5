import LancetIR
import LancetSurgery
import LancetTensor

/// The importance scores of the Wanda family, per weight of a linear `W` (`[out, in]`):
///
///     Wanda  (Sun et al. 2023):   S_ij = |W_ij| · ‖X_j‖₂
///     RGS    (Wanda++ 2025):      S_ij = (α · G_ij + ‖X_j‖₂) · |W_ij|
///
/// with `‖X_j‖₂` the norm of input channel `j` over every calibration token and `G` the regional gradient
/// (per weight, the root mean square over calibration windows of ∂‖block(X_w)‖₂/∂W). Scores are compared per
/// output row, per layer, or within each group of M consecutive inputs (`SparsityPattern`).
public enum WandaScore {
    /// `|W_ij| · ‖X_j‖` for `weight` `[out, in]` and `inputNorms` `[in]`.
    public static func scores(weight: Tensor, inputNorms: [Float]) -> Tensor {
        let (rows, cols) = (weight.shape[0], weight.shape[1])
        precondition(inputNorms.count == cols, "WandaScore: \(inputNorms.count) input norms for weight \(weight.shape)")
        var s = Tensor(uninitializedShape: weight.shape)
        s.withUnsafeMutableBufferPointer { sp in
            weight.withUnsafeBufferPointer { wp in
                inputNorms.withUnsafeBufferPointer { np in
                    for r in 0..<rows {
                        let base = r * cols
                        for j in 0..<cols { sp[base + j] = abs(wp[base + j]) * np[j] }
                    }
                }
            }
        }
        return s
    }

    /// `(α · G_ij + ‖X_j‖) · |W_ij|` for `weight` and `gradient` `[out, in]` and `inputNorms` `[in]`.
    public static func regionalGradientScores(weight: Tensor, gradient: Tensor, inputNorms: [Float], alpha: Float) -> Tensor {
        let (rows, cols) = (weight.shape[0], weight.shape[1])
        precondition(gradient.shape == weight.shape, "WandaScore: gradient \(gradient.shape) for weight \(weight.shape)")
        precondition(inputNorms.count == cols, "WandaScore: \(inputNorms.count) input norms for weight \(weight.shape)")
        var s = Tensor(uninitializedShape: weight.shape)
        s.withUnsafeMutableBufferPointer { sp in
            weight.withUnsafeBufferPointer { wp in
                gradient.withUnsafeBufferPointer { gp in
                    inputNorms.withUnsafeBufferPointer { np in
                        for r in 0..<rows {
                            let base = r * cols
                            for j in 0..<cols { sp[base + j] = (alpha * gp[base + j] + np[j]) * abs(wp[base + j]) }
                        }
                    }
                }
            }
        }
        return s
    }

    /// ‖X_j‖₂ of every column of `x` (`[tokens, in]`), accumulated in Double.
    public static func columnNorms(_ x: Tensor) -> [Float] {
        var sums = [Double](repeating: 0, count: x.shape[1])
        accumulateColumnSquares(x, into: &sums)
        return sums.map { Float($0.squareRoot()) }
    }

    /// Adds Σ_t x_tj² of `x` (`[tokens, in]`) to `sums[j]`.
    public static func accumulateColumnSquares(_ x: Tensor, into sums: inout [Double]) {
        precondition(sums.count == x.shape[1], "WandaScore: \(sums.count) sums for \(x.shape[1]) columns")
        LancetSurgery.accumulateColumnSquares(x, into: &sums)
    }
}

extension SparsityPattern {
    /// This pattern with its unstructured sparsity replaced by `sparsity` (N:M patterns are unchanged).
    func withSparsity(_ sparsity: Double) -> SparsityPattern {
        if case let .unstructured(_, perRow) = self { return .unstructured(sparsity: sparsity, perRow: perRow) }
        return self
    }
}

/// Masks one linear of `block` by `scores` under `pattern`, keeping whatever an earlier cut pruned
/// (the new mask is intersected with an existing one). Returns (pruned, total) element counts.
@discardableResult
func prune(_ block: inout Block, weight name: String, scores: Tensor, pattern: SparsityPattern, previous: Mask? = nil) -> (pruned: Int, total: Int) {
    var mask = pattern.mask(scores: scores)
    if let previous { mask = mask.intersection(previous) }
    block.setMasked(name, weight: block.parameters[name]!, mask: mask)
    return (mask.prunedCount, mask.keep.count)
}
