import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// SVD-LLM (Wang et al. 2024, "SVD-LLM: Truncation-aware Singular Value Decomposition for Large Language Model
/// Compression"): truncation-aware whitening — with the Cholesky factor L of the inputs' Gram XᵀX = L·Lᵀ, the SVD
/// of W·L is truncated, so each discarded singular value σᵢ costs exactly σᵢ² of output error on the calibration
/// inputs, and L⁻¹ is folded back into the inner factor — followed by the closed-form update of the factors.
///
/// **The update** (`update: layer`, the default). The block's linears are factorised in dependency order (q, k, v;
/// then o; then gate, up; then down), each from its inputs X' in the block whose earlier linears are already
/// factorised, against the dense layer's output on the dense block's inputs X. The rank-r solution of
/// min ‖X Wᵀ − X' W'ᵀ‖² is in closed form: the least-squares weight W* = W Cᵀ G'⁻¹ (G' = X'ᵀX', C = X'ᵀX)
/// truncated under the whitening of G'. The first linears of a block see unchanged inputs (X' = X), where this is
/// plain SVD-LLM whitening. The pipeline sweeps block by block, so every block's inputs already come from the
/// compressed blocks before it. `update: residual` goes one step further for the linears that write into a residual
/// sum (o and down): their target is the dense block's residual stream, X Wᵀ + r − r', so `down` also absorbs what
/// the factorised attention changed in its residual. `update: none` whitens every linear with the Gram of its
/// dense-block inputs (SVD-LLM's truncation alone).
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
        /// With `global`: `block` (measured block-output sensitivity) or `spectrum` (each linear's own error).
        public var sensitivity = "block"
        /// Calibration windows the block-output sensitivity is measured on.
        public var sensitivity_windows = 4
        /// Ridge added to the Gram before its Cholesky factorisation, relative to its mean diagonal.
        public var damping = 1e-4
        /// The closed-form update: `layer`, `residual` or `none`.
        public var update = "layer"
        /// Calibration windows per forward call of the update's paired runs.
        public var windows_per_call = 2
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = DecompositionHelp.calibrated.merging([
        "damping": "λ = damping · mean(diag XᵀX) added to the Gram's diagonal before whitening (raised tenfold while indefinite)",
        "update": "layer: factorise each linear from its inputs in the partly factorised block against the dense layer (closed form); residual: o and down also match the dense block's residual stream; none: whitening only",
        "windows_per_call": "calibration windows per forward call when the update measures inputs (memory against speed)",
    ]) { $1 }

    let factorisation: Factorisation
    /// Whether the global allocation measures block-output sensitivities, and on how many windows.
    let sensitivity: DecompositionHelp.Sensitivity
    /// The relative damping.
    public let damping: Double
    /// The closed-form update after whitening.
    public enum Update: String, Sendable {
        /// Each linear against the dense layer, from its inputs in the partly factorised block.
        case layer
        /// As `layer`, and residual writers against the dense block's residual stream.
        case residual
        /// Whitening alone.
        case none
    }

    /// The update.
    public let update: Update
    /// Windows per call.
    public let windowsPerCall: Int

    public init(options: Options) throws {
        factorisation = Factorisation(budget: try RankBudget(rank: options.rank, ratio: options.ratio, allocation: options.allocation))
        sensitivity = try DecompositionHelp.Sensitivity(options.sensitivity, windows: options.sensitivity_windows)
        guard options.damping > 0, options.damping < 1 else { throw PassOptionError("damping", "must be in (0, 1), got \(options.damping)") }
        guard options.windows_per_call >= 1 else { throw PassOptionError("windows_per_call", "must be at least 1, got \(options.windows_per_call)") }
        damping = options.damping
        guard let update = Update(rawValue: options.update) else {
            throw PassOptionError("update", "must be layer, residual or none, got '\(options.update)'")
        }
        self.update = update
        windowsPerCall = options.windows_per_call
    }

    /// The Gram of every targeted input; with an update, only of the first round's input (the later rounds measure
    /// their inputs in the partly factorised block themselves).
    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        let rounds = Factorisation.rounds(of: context.linears(in: block)) { $0.node }
        return (update == .none ? rounds : Array(rounds.prefix(1))).map { InputGram(value: $0.value) }
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        let damping = self.damping
        let probe = sensitivity.measured ? Self.probeWhitening(damping: damping) : nil
        return try factorisation.plan(model: model, context: context, method: Self.name, analyses: { [InputGram(value: $0.inputs[0])] },
                                      weighting: { node, _, statistics in
                                          try InputWeighting.whitening(gram: try statistics!.gram(of: node.inputs[0]), damping: damping)
                                      },
                                      probeWeighting: probe, sensitivityWindows: sensitivity.windows)
    }

    /// The whitening of a linear from its inputs on the sensitivity's probe windows.
    static func probeWhitening(damping: Double) -> @Sendable (Node, Tensor) throws -> InputWeighting {
        { _, x in
            let g: Tensor = gram(x)
            return try InputWeighting.whitening(gram: g, damping: damping)
        }
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let dense = block            // the block as the stage received it: the update's teacher
        let targets = try factorisation.targets(in: block, context: context)
        var done: [(Factorisation.Target, LowRankFactors)] = []
        let rounds = Factorisation.rounds(of: targets) { $0.node }
        // With `update: residual`, the residual value each linear writes into, by node.
        let residuals: [String: String] = update == .residual ? Dictionary(uniqueKeysWithValues: targets.compactMap { t in
            block.residualSummand(of: t.node).map { (t.node.name, $0) }
        }) : [:]
        var updated = 0
        // The dense block's values every later round reads, captured once.
        var denseValues: PairedInputStatistics.DenseValues?
        if update != .none, rounds.count > 1 {
            let wanted = Set(rounds.dropFirst().map(\.value)).union(residuals.values)
            denseValues = try PairedInputStatistics.DenseValues(wanted, of: dense, index: context.blockIndex, inputs: context.calibration.inputs,
                                                                length: context.calibration.length, windowsPerCall: windowsPerCall)
        }
        for (k, round) in rounds.enumerated() {
            let gram: Tensor, goal: (Factorisation.Target) throws -> Tensor
            if let denseValues, k > 0 {
                let paired = try PairedInputStatistics(of: round.value, dense: denseValues, changed: block, index: context.blockIndex,
                                                       inputs: context.calibration.inputs,
                                                       residuals: Set(round.items.compactMap { residuals[$0.node.name] }))
                gram = paired.gram
                goal = { try paired.leastSquaresWeight($0.weight, residual: residuals[$0.node.name], damping: damping) }
                updated += round.items.count
            } else {
                gram = try context.statistics.gram(of: round.value)
                goal = { $0.weight }
            }
            let weighting = try InputWeighting.whitening(gram: gram, damping: damping)
            for t in round.items {
                let f = try LowRankFactors.truncate(try goal(t), weighting: weighting, rank: t.rank)
                block.factorise(linear: t.node.name, into: f)
                done.append((t, f))
            }
        }
        var report = Factorisation.report(pass: Self.name, factorised: done)
        report.metrics["updated_linears"] = Double(updated)
        return report
    }
}
