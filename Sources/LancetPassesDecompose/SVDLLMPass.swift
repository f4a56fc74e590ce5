import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// SVD-LLM (Wang et al. 2024, "SVD-LLM: Truncation-aware Singular Value Decomposition for Large Language Model
/// Compression"): truncation-aware whitening — with the Cholesky factor L of the inputs' Gram XᵀX = L·Lᵀ, the SVD
/// of W·L is truncated, so each discarded singular value σᵢ costs exactly σᵢ² of output error on the calibration
/// inputs, and L⁻¹ is folded back into the inner factor — followed by the closed-form update of the factors.
///
/// **The update** (`update: true`, the default). The block's linears are factorised in dependency order (q, k, v;
/// then o; then gate, up; then down), each from its inputs X' in the block whose earlier linears are already
/// factorised, against the dense layer's output on the dense block's inputs X. The rank-r solution of
/// min ‖X Wᵀ − X' W'ᵀ‖² is in closed form: the least-squares weight W* = W Cᵀ G'⁻¹ (G' = X'ᵀX', C = X'ᵀX)
/// truncated under the whitening of G'. The first linears of a block see unchanged inputs (X' = X), where this is
/// plain SVD-LLM whitening. The pipeline sweeps block by block, so every block's inputs already come from the
/// compressed blocks before it. `update: false` whitens every linear with the Gram of its dense-block inputs.
///
/// ```yaml
/// - svd-llm: {ratio: 0.8}
/// - svd-llm: {ratio: 0.8, allocation: global}
///   fit: {method: lstsq}
/// ```
public struct SVDLLMPass: BlockPass {
    public static let name = "svd-llm"
    public static let summary = "Factorise linears by SVD-LLM: truncation-aware whitening and the closed-form update."
    public static let needsCalibration = true
    public static let readsDenseOutputs = false

    /// Options of `svd-llm`.
    public struct Options: Codable, Sendable {
        /// Every linear keeps this rank (0: use `ratio`).
        public var rank = 0
        /// Share of the targeted linears' parameters kept.
        public var ratio = 0.8
        /// `uniform` or `global`.
        public var allocation = "uniform"
        /// Ridge added to the Gram before its Cholesky factorisation, relative to its mean diagonal.
        public var damping = 1e-4
        /// Whether to apply the closed-form update (factorise against the dense layer from the updated inputs).
        public var update = true
        /// Calibration windows per forward call of the update's paired runs.
        public var windows_per_call = 2
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = DecompositionHelp.shared.merging([
        "damping": "λ = damping · mean(diag XᵀX) added to the Gram's diagonal before whitening (raised tenfold while indefinite)",
        "update": "true: factorise each linear from its inputs in the partly factorised block against the dense layer (closed form); false: whitening only",
        "windows_per_call": "calibration windows per forward call when the update measures inputs (memory against speed)",
    ]) { $1 }

    let factorisation: Factorisation
    /// The relative damping.
    public let damping: Double
    /// Whether the update runs.
    public let update: Bool
    /// Windows per call.
    public let windowsPerCall: Int

    public init(options: Options) throws {
        factorisation = Factorisation(budget: try RankBudget(rank: options.rank, ratio: options.ratio, allocation: options.allocation))
        guard options.damping > 0, options.damping < 1 else { throw PassOptionError("damping", "must be in (0, 1), got \(options.damping)") }
        guard options.windows_per_call >= 1 else { throw PassOptionError("windows_per_call", "must be at least 1, got \(options.windows_per_call)") }
        damping = options.damping
        update = options.update
        windowsPerCall = options.windows_per_call
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        context.linears(in: block).map { InputGram(value: $0.node.inputs[0]) }
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        try factorisation.plan(model: model, context: context, analyses: { [InputGram(value: $0.inputs[0])] },
                               weighting: { node, _, statistics in
                                   try InputWeighting.whitening(gram: try statistics!.gram(of: node.inputs[0]), damping: damping)
                               })
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let dense = block
        let targets = try factorisation.targets(in: block, context: context)
        var done: [(Factorisation.Target, LowRankFactors)] = []
        let rounds = Factorisation.rounds(of: targets.map(\.node)).map { round in
            (value: round.value, targets: round.nodes.map { n in targets.first { $0.node.name == n.name }! })
        }
        var updated = 0
        for round in rounds {
            let gram: Tensor, goal: (Tensor) throws -> Tensor
            if update, !done.isEmpty, block.valuesChanged(from: dense).contains(round.value) {
                let paired = try PairedInputStatistics(of: round.value, dense: dense, changed: block, index: context.blockIndex,
                                                       inputs: context.calibration.inputs, length: context.calibration.length,
                                                       windowsPerCall: windowsPerCall)
                gram = paired.gram
                goal = { try paired.leastSquaresWeight($0, damping: damping) }
                updated += round.targets.count
            } else {
                gram = try context.statistics.gram(of: round.value)
                goal = { $0 }
            }
            let weighting = try InputWeighting.whitening(gram: gram, damping: damping)
            for t in round.targets {
                let f = try LowRankFactors.truncate(try goal(t.weight), weighting: weighting, rank: t.rank)
                block.factorise(linear: t.node.name, into: f)
                done.append((t, f))
            }
        }
        var report = Factorisation.report(pass: Self.name, factorised: done)
        report.metrics["updated_linears"] = Double(updated)
        return report
    }
}
