import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// How a pruning pass spreads its target sparsity over the blocks.
///
/// `uniform` prunes every block to the target. `owl` is Outlier Weighed Layerwise sparsity (Yin et al.
/// 2023): blocks with more activation outliers keep more weights. A block's outlier ratio `D_l` is the
/// fraction of its Wanda scores `|W_ij|·‖X_j‖` (pooled over the block's targeted linears) above `M` times
/// their mean, measured on the dense model; the ratios are min-max scaled to `[0, 2λ]`, centred, and
/// subtracted from the target:
///
///     D̂_l = 2λ · (D_l − min D) / (max D − min D)
///     s_l = s − (D̂_l − mean_w D̂)                         (mean_w: weighted by targeted parameters)
///
/// so the parameter-weighted mean of `s_l` is `s` and every `s_l` lies within `s ± 2λ` (λ = 0.08: ±16 points at most).
public enum SparsityAllocation: Sendable, Equatable {
    /// Every block at the target sparsity.
    case uniform
    /// OWL: per-block sparsity from the block's outlier ratio.
    case owl(m: Double, lambda: Double)

    /// The `modelFacts` key of the per-block sparsities.
    public static let sparsityFact = "sparsity"
    /// The `modelFacts` key of the per-block outlier ratios.
    public static let outlierFact = "outlier_ratio"

    /// Parses the `allocation`, `owl_m` and `owl_lambda` options for `pattern` at `sparsity`.
    public static func parse(_ name: String, m: Double, lambda: Double, pattern: SparsityPattern) throws -> SparsityAllocation {
        switch name {
        case "uniform":
            return .uniform
        case "owl":
            guard case let .unstructured(s, _) = pattern else {
                throw PassOptionError("allocation", "owl needs the unstructured pattern (N:M fixes every block's sparsity), got \(pattern)")
            }
            guard m > 0 else { throw PassOptionError("owl_m", "must be positive, got \(m)") }
            guard lambda >= 0 else { throw PassOptionError("owl_lambda", "must be non-negative, got \(lambda)") }
            guard s - 2 * lambda >= 0 && s + 2 * lambda < 1 else {
                throw PassOptionError("owl_lambda", "sparsity \(s) ± 2·\(lambda) leaves [0, 1)")
            }
            return .owl(m: m, lambda: lambda)
        default:
            throw PassOptionError("allocation", "must be 'uniform' or 'owl', got '\(name)'")
        }
    }

    /// The fraction of `scores` (pooled over every tensor) strictly above `m` times their mean.
    public static func outlierRatio(_ scores: [Tensor], m: Double) -> Double {
        var sum = 0.0, count = 0
        for s in scores { s.withUnsafeBufferPointer { p in for v in p { sum += Double(v) }; count += p.count } }
        guard count > 0 else { return 0 }
        let threshold = Float(m * sum / Double(count))
        var above = 0
        for s in scores { s.withUnsafeBufferPointer { p in for v in p where v > threshold { above += 1 } } }
        return Double(above) / Double(count)
    }

    /// Per-block sparsities from outlier `ratios`, weighted by each block's targeted parameter count
    /// (`weights`, 0 for blocks the pass does not touch), around `target`.
    public static func owlSparsities(ratios: [Double], weights: [Double], target: Double, lambda: Double) -> [Double] {
        precondition(ratios.count == weights.count, "owlSparsities: \(ratios.count) ratios, \(weights.count) weights")
        let counted = ratios.indices.filter { weights[$0] > 0 }
        guard let lo = counted.map({ ratios[$0] }).min(), let hi = counted.map({ ratios[$0] }).max(), hi > lo else {
            return ratios.map { _ in target }
        }
        let scaled = ratios.map { 2 * lambda * ($0 - lo) / (hi - lo) }
        let total = counted.reduce(0.0) { $0 + weights[$1] }
        let mean = counted.reduce(0.0) { $0 + weights[$1] * scaled[$1] } / total
        return ratios.indices.map { weights[$0] > 0 ? target - (scaled[$0] - mean) : target }
    }

    /// The facts a pass with this allocation needs before its sweep: nothing for `uniform`; for `owl`, one
    /// dense calibration sweep measuring every block's outlier ratio, giving `sparsity` and `outlier_ratio`
    /// per block.
    func plan(model: Model, context: PlanContext, target: Double) throws -> [String: [Double]] {
        guard case let .owl(m, lambda) = self else { return [:] }
        var ratios = [Double](repeating: 0, count: model.blocks.count)
        var weights = [Double](repeating: 0, count: model.blocks.count)
        try context.denseSweep(requests: { index, block in
            context.targets.linears(in: block, index: index).map { InputSquares(value: $0.node.inputs[0]) }
        }, visit: { index, block, statistics in
            var scores: [Tensor] = []
            for (node, op) in context.targets.linears(in: block, index: index) {
                let w = block.parameters[op.weight!]!
                scores.append(WandaScore.scores(weight: w, inputNorms: try statistics.inputNorms(of: node.inputs[0])))
            }
            ratios[index] = Self.outlierRatio(scores, m: m)
            weights[index] = Double(scores.reduce(0) { $0 + $1.count })
        })
        let sparsities = Self.owlSparsities(ratios: ratios, weights: weights, target: target, lambda: lambda)
        context.log("owl: per-block sparsity " + sparsities.map { String(format: "%.3f", $0) }.joined(separator: " "))
        return [Self.sparsityFact: sparsities, Self.outlierFact: ratios]
    }

    /// The sparsity of block `index` under this allocation (the plan's result for `owl`).
    func sparsity(block index: Int, target: Double, facts: [String: [Double]]) throws -> Double {
        guard case .owl = self else { return target }
        guard let s = facts[Self.sparsityFact], index < s.count else {
            throw PipelineError.missingStatistic("OWL per-block sparsity (the pass's plan did not run)")
        }
        return s[index]
    }
}
