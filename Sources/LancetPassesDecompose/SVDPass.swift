import LancetIR
import LancetSurgery
import LancetTensor

/// Plain truncated SVD of every targeted linear: W ≈ U_r Σ_r V_rᵀ, stored as two factors (the control for the
/// activation-aware methods; it needs no calibration data). The weight's own spectrum decides, so the error on
/// real inputs can be large: on SmolLM2 every linear at 80% of its parameters ruins the model. Its global allocation
/// compares the linears' own spectra only (no data, so no measured sensitivity).
///
/// ```yaml
/// - svd: {ratio: 0.8}
///   targets: ["blocks.*.attn.*", "blocks.*.mlp.*"]
/// ```
public struct SVDPass: BlockPass {
    public static let name = "svd"
    public static let summary = "Factorise linears by truncated SVD of the weights (the data-free control)."
    public static let readsDenseOutputs = false

    /// Options of `svd`.
    public struct Options: Codable, Sendable {
        /// Every linear keeps this rank (0: use `ratio`).
        public var rank = 0
        /// Share of the targeted linears' parameters kept.
        public var ratio = 0.8
        /// `uniform` (every linear keeps `ratio`) or `global` (ranks allocated across the model).
        public var allocation = "uniform"
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = DecompositionHelp.shared

    let factorisation: Factorisation

    public init(options: Options) throws {
        factorisation = Factorisation(budget: try RankBudget(rank: options.rank, ratio: options.ratio, allocation: options.allocation))
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        try factorisation.plan(model: model, context: context, method: Self.name, analyses: { _ in [] }, weighting: { _, _, _ in .none },
                               probeWeighting: nil, sensitivityWindows: 0)
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        try factorisation.factoriseAll(&block, context: context, pass: Self.name) { _ in .none }
    }
}

/// Option help and parsing shared by the SVD passes.
enum DecompositionHelp {
    /// The global allocation's sensitivity: measured block-output error per linear, or each linear's own error.
    struct Sensitivity: Sendable {
        let measured: Bool
        let windows: Int
        init(_ text: String, windows: Int) throws {
            guard text == "block" || text == "spectrum" else { throw PassOptionError("sensitivity", "must be block or spectrum, got '\(text)'") }
            guard windows >= 1 else { throw PassOptionError("sensitivity_windows", "must be at least 1, got \(windows)") }
            measured = text == "block"
            self.windows = windows
        }
    }

    /// The help of the calibrated passes (the shared keys and the sensitivity).
    static let calibrated = shared.merging([
        "sensitivity": "allocation: global only. block: each linear's spectrum scaled by the block-output error its truncation causes (measured); spectrum: each linear's own relative error",
        "sensitivity_windows": "calibration windows the block-output sensitivity is measured on (one block run per linear)",
    ]) { $1 }

    static let shared: [String: String] = [
        "rank": "every targeted linear keeps this rank (0: use ratio instead)",
        "ratio": "share of the targeted linears' parameters kept, in (0, 1]: rank ⌊ratio·out·in/(out+in)⌋ each, or the model-wide total with allocation: global",
        "allocation": "uniform: every linear keeps ratio of its own parameters; global: ranks allocated across all blocks to the same total, by weighted spectrum",
    ]
}
