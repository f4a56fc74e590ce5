import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// ASVD (Yuan et al. 2023, "ASVD: Activation-aware Singular Value Decomposition for Compressing Large Language
/// Models"): before truncating, every input channel j of the weight is scaled by s_j = (mean |x_j|)^α over the
/// calibration tokens, so channels that carry large activations are kept more faithfully; the scaling is folded
/// back into the inner factor (A = Σ_r^½ V_rᵀ S⁻¹).
///
/// ```yaml
/// - asvd: {ratio: 0.8, alpha: 0.5}
/// ```
public struct ASVDPass: BlockPass {
    public static let name = "asvd"
    public static let summary = "Factorise linears by SVD with input channels scaled by their mean activation magnitude (ASVD)."
    public static let needsCalibration = true
    public static let readsDenseOutputs = false

    /// Options of `asvd`.
    public struct Options: Codable, Sendable {
        /// Every linear keeps this rank (0: use `ratio`).
        public var rank = 0
        /// Share of the targeted linears' parameters kept.
        public var ratio = 0.8
        /// `uniform` or `global`.
        public var allocation = "uniform"
        /// With `global`: `block` (measured block-output sensitivity) or `spectrum` (each linear's own error).
        public var sensitivity = "block"
        /// Calibration windows the block-output sensitivity is measured on.
        public var sensitivity_windows = 4
        /// The exponent α of the channel scales (mean |x|)^α.
        public var alpha = 0.5
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = DecompositionHelp.calibrated.merging([
        "alpha": "exponent α of the input-channel scale (mean |x_j|)^α; 0 is plain SVD",
    ]) { $1 }

    let factorisation: Factorisation
    /// Whether the global allocation measures block-output sensitivities, and on how many windows.
    let sensitivity: DecompositionHelp.Sensitivity
    /// The exponent.
    public let alpha: Double

    public init(options: Options) throws {
        factorisation = Factorisation(budget: try RankBudget(rank: options.rank, ratio: options.ratio, allocation: options.allocation))
        sensitivity = try DecompositionHelp.Sensitivity(options.sensitivity, windows: options.sensitivity_windows)
        guard options.alpha >= 0, options.alpha <= 4 else { throw PassOptionError("alpha", "must be in [0, 4], got \(options.alpha)") }
        alpha = options.alpha
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        context.linears(in: block).map { InputAbsoluteMeans(value: $0.node.inputs[0]) }
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        let alpha = self.alpha
        let probe: (@Sendable (Node, Tensor) throws -> InputWeighting)? = sensitivity.measured
            ? { _, x in ASVDPass.scales(absoluteMeans: ASVDPass.absoluteMeans(x), alpha: alpha) } : nil
        return try factorisation.plan(model: model, context: context, method: Self.name, analyses: { [InputAbsoluteMeans(value: $0.inputs[0])] },
                                      weighting: { node, _, statistics in try weighting(for: node, statistics: statistics!) },
                                      probeWeighting: probe, sensitivityWindows: sensitivity.windows)
    }

    /// diag((mean |x_j|)^α) of a linear's inputs, from the block statistics.
    func weighting(for node: Node, statistics: BlockStatistics) throws -> InputWeighting {
        Self.scales(absoluteMeans: try statistics.absoluteMeans(of: node.inputs[0]), alpha: alpha)
    }

    /// diag(means^α), with channels that never fire floored at 10⁻⁶ of the largest scale.
    static func scales(absoluteMeans means: [Float], alpha: Double) -> InputWeighting {
        var scales = means.map { Float(pow(Double($0), alpha)) }
        let floor = max((scales.max() ?? 1) * 1e-6, Float.leastNormalMagnitude)
        scales = scales.map { $0.isFinite ? max($0, floor) : floor }
        return .diagonal(scales)
    }

    /// The mean |x_j| of every column of `x`.
    static func absoluteMeans(_ x: Tensor) -> [Float] {
        InputAbsoluteMeans.columnAbsoluteSums(x).map { Float($0 / Double(max(x.shape[0], 1))) }
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        try factorisation.factoriseAll(&block, context: context, pass: Self.name) { try weighting(for: $0.node, statistics: context.statistics) }
    }
}
