import LancetIR
import LancetSurgery
import LancetTensor

/// SparseGPT (Frantar & Alistarh 2023, "Massive Language Models Can Be Accurately Pruned in One-Shot"):
/// prunes every targeted linear column by column and updates the weights that remain so that the layer's
/// output on the calibration inputs changes as little as possible (Optimal Brain Surgeon with the input
/// Gram `XᵀX` as Hessian; see `SparseGPTSolver`). Masks: unstructured per column block of `block_size`
/// (lowest `W²/[H⁻¹]_jj²` pooled over the block's rows, as the reference does), or N:M. The report carries
/// the layer reconstruction error ‖(W − W₀)X‖² / ‖W₀X‖² of the mask alone and after the update, summed
/// over the block's linears.
///
/// ```yaml
/// - sparsegpt: {sparsity: 0.5, block_size: 128, damping: 0.01}
/// - sparsegpt: {pattern: "2:4"}
///   targets: ["blocks.*.attn.*", "blocks.*.mlp.*"]
/// ```
public struct SparseGPTPass: BlockPass {
    public static let name = "sparsegpt"
    public static let summary = "Prune with SparseGPT's one-shot OBS weight reconstruction (unstructured or N:M)."
    /// Reads calibration activations (scores, statistics), so the run needs calibration data.
    public static let needsCalibration = true
    /// Reads block inputs and statistics only, never the dense block's outputs.
    public static let readsDenseOutputs = false

    /// Options of `sparsegpt`.
    public struct Options: Codable, Sendable {
        /// Fraction of weights removed (unstructured; the mean over blocks with OWL).
        public var sparsity = 0.5
        /// `unstructured` or `N:M` (e.g. `2:4`).
        public var pattern = "unstructured"
        /// Columns per lazy-update block (and per unstructured mask choice).
        public var block_size = 128
        /// Ridge added to the Gram's diagonal, relative to its mean diagonal.
        public var damping = 0.01
        /// `uniform` or `owl`.
        public var allocation = "uniform"
        /// OWL's outlier threshold M.
        public var owl_m = 5.0
        /// OWL's spread λ.
        public var owl_lambda = 0.08
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "sparsity": "fraction of weights removed in [0, 1) (unstructured pattern; the parameter-weighted mean with owl)",
        "pattern": "unstructured, or N:M to keep N of every M consecutive inputs (2:4, 4:8)",
        "block_size": "columns per lazy-update block; the unstructured mask is chosen per block (a multiple of M for N:M)",
        "damping": "λ = damping · mean(diag XᵀX) added to the Gram's diagonal before inversion",
        "allocation": "uniform: every block at the sparsity; owl: blocks with more activation outliers keep more",
        "owl_m": "owl: a Wanda score is an outlier above owl_m × the block's mean score",
        "owl_lambda": "owl: block sparsities lie within sparsity ± 2·owl_lambda",
    ]

    /// The pruning pattern at the target sparsity.
    public let pattern: SparsityPattern
    /// Columns per block.
    public let blockSize: Int
    /// Relative damping.
    public let damping: Double
    /// How the target is spread over blocks.
    public let allocation: SparsityAllocation

    public init(options: Options) throws {
        pattern = try SparsityPattern.parse(pattern: options.pattern, sparsity: options.sparsity, scope: "layer")
        guard options.block_size >= 1 else { throw PassOptionError("block_size", "must be at least 1, got \(options.block_size)") }
        if case let .nOfM(_, m) = pattern, options.block_size % m != 0 {
            throw PassOptionError("block_size", "must be a multiple of M = \(m) for \(pattern), got \(options.block_size)")
        }
        guard options.damping > 0 else { throw PassOptionError("damping", "must be positive, got \(options.damping)") }
        blockSize = options.block_size
        damping = options.damping
        allocation = try SparsityAllocation.parse(options.allocation, m: options.owl_m, lambda: options.owl_lambda, pattern: pattern)
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        try pattern.check(model: model, targets: targets)
    }

    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        try allocation.plan(model: model, context: context, target: pattern.sparsity)
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        context.linears(in: block).map { InputGram(value: $0.node.inputs[0]) }
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let blockPattern = pattern.withSparsity(try allocation.sparsity(block: context.blockIndex, target: pattern.sparsity, facts: context.modelFacts))
        var pruned = 0, total = 0
        var metrics: [String: Double] = [:]
        var maskOnly = 0.0, updated = 0.0
        for (node, op) in context.linears(in: block) {
            let name = op.weight!
            let gram = try context.statistics.gram(of: node.inputs[0])
            let r = try SparseGPTSolver.prune(weight: block.parameters[name]!, gram: gram, pattern: blockPattern, blockSize: blockSize, damping: damping)
            let mask = block.masks[name].map { r.mask.intersection($0) } ?? r.mask
            block.setMasked(name, weight: r.weight, mask: mask)
            pruned += mask.prunedCount
            total += mask.keep.count
            metrics["reconstruction_error_mask_only.\(node.name)"] = r.errorMaskOnly
            metrics["reconstruction_error.\(node.name)"] = r.error
            maskOnly += r.errorMaskOnly
            updated += r.error
        }
        metrics["pruned"] = Double(pruned)
        metrics["sparsity"] = total > 0 ? Double(pruned) / Double(total) : 0
        metrics["target_sparsity"] = blockPattern.sparsity
        metrics["reconstruction_error_mask_only"] = maskOnly
        metrics["reconstruction_error"] = updated
        return PassReport(pass: Self.name, metrics: metrics)
    }
}
