import LancetIR
import LancetSurgery
import LancetTensor

/// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"): removes
/// the weights of lowest `|W_ij| · ‖X_j‖₂` from every targeted linear, where `‖X_j‖₂` is the norm of input
/// channel `j` over the calibration tokens (the diagonal of the input Gram the pipeline collects on the
/// block's current inputs). Scores are compared per output row (the paper's choice), per layer, or within
/// every group of M consecutive inputs for N:M. No weight is updated.
///
/// With `allocation: owl` the target sparsity is spread over blocks by their activation outliers (OWL,
/// see `SparsityAllocation`); the pass then plans once on the dense model before the sweep.
///
/// ```yaml
/// - wanda: {sparsity: 0.5, pattern: unstructured, scope: row}
/// - wanda: {pattern: "2:4"}
///   targets: ["blocks.*.mlp.*"]
/// - wanda: {sparsity: 0.6, allocation: owl, owl_m: 5, owl_lambda: 0.08}
/// ```
public struct WandaPass: BlockPass {
    public static let name = "wanda"
    public static let summary = "Prune the weights of lowest |W|·‖X‖ (Wanda), per row, per layer or N:M; optional OWL allocation."
    /// Reads calibration activations (scores, statistics), so the run needs calibration data.
    public static let needsCalibration = true
    /// Reads block inputs and statistics only, never the dense block's outputs.
    public static let readsDenseOutputs = false

    /// Options of `wanda`.
    public struct Options: Codable, Sendable {
        /// Fraction of weights removed (unstructured; the mean over blocks with OWL).
        public var sparsity = 0.5
        /// `unstructured` or `N:M` (e.g. `2:4`).
        public var pattern = "unstructured"
        /// `row` (compare within each output row) or `layer`.
        public var scope = "row"
        /// `uniform` or `owl`.
        public var allocation = "uniform"
        /// OWL's outlier threshold M (a score is an outlier above M × the block's mean score).
        public var owl_m = 5.0
        /// OWL's spread λ: block sparsities stay within sparsity ± 2λ.
        public var owl_lambda = 0.08
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "sparsity": "fraction of weights removed in [0, 1) (unstructured pattern; the parameter-weighted mean with owl)",
        "pattern": "unstructured, or N:M to keep N of every M consecutive inputs (2:4, 4:8)",
        "scope": "row: prune each output row to the sparsity; layer: the whole matrix",
        "allocation": "uniform: every block at the sparsity; owl: blocks with more activation outliers keep more",
        "owl_m": "owl: a score is an outlier above owl_m × the block's mean score",
        "owl_lambda": "owl: block sparsities lie within sparsity ± 2·owl_lambda",
    ]

    /// The pruning pattern at the target sparsity.
    public let pattern: SparsityPattern
    /// How the target is spread over blocks.
    public let allocation: SparsityAllocation

    public init(options: Options) throws {
        pattern = try SparsityPattern.parse(pattern: options.pattern, sparsity: options.sparsity, scope: options.scope)
        allocation = try SparsityAllocation.parse(options.allocation, m: options.owl_m, lambda: options.owl_lambda, pattern: pattern)
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        try pattern.check(model: model, targets: targets)
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        try allocation.plan(model: model, context: context, target: pattern.sparsity)
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        context.linears(in: block).map { InputSquares(value: $0.node.inputs[0]) }
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let blockPattern = pattern.withSparsity(try allocation.sparsity(block: context.blockIndex, target: pattern.sparsity, facts: context.modelFacts))
        var pruned = 0, total = 0
        for (node, op) in context.linears(in: block) {
            let name = op.weight!
            let norms = try context.statistics.inputNorms(of: node.inputs[0])
            let scores = WandaScore.scores(weight: block.parameters[name]!, inputNorms: norms)
            let (p, t) = prune(&block, weight: name, scores: scores, pattern: blockPattern, previous: block.masks[name])
            pruned += p
            total += t
        }
        return PassReport(pass: Self.name, metrics: [
            "pruned": Double(pruned), "sparsity": total > 0 ? Double(pruned) / Double(total) : 0,
            "target_sparsity": blockPattern.sparsity,
        ])
    }
}
