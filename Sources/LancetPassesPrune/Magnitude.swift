import LancetIR
import LancetSurgery
import LancetTensor

/// Magnitude pruning: removes the weights of smallest |W| from every targeted linear — per output row,
/// per layer, or N:M. Needs no calibration statistics (local fitting, if the recipe asks for it, does).
///
/// ```yaml
/// - magnitude: {sparsity: 0.5, pattern: unstructured, scope: row}
///   targets: ["blocks.*.mlp.*", "blocks.*.attn.*"]
///   fit: {method: lstsq, damping: 0.01}
/// ```
public struct MagnitudePass: BlockPass {
    public static let name = "magnitude"
    public static let summary = "Prune the smallest-magnitude weights of each linear (per row, per layer, or N:M)."
    /// Reads the weights only, never the dense block's outputs.
    public static let readsDenseOutputs = false

    /// Options of `magnitude`.
    public struct Options: Codable, Sendable {
        /// Fraction of weights removed (unstructured).
        public var sparsity = 0.5
        /// `unstructured` or `N:M` (e.g. `2:4`).
        public var pattern = "unstructured"
        /// `row` (compare within each output row) or `layer`.
        public var scope = "row"
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "sparsity": "fraction of weights removed in [0, 1) (unstructured pattern)",
        "pattern": "unstructured, or N:M to keep N of every M consecutive inputs (2:4, 4:8)",
        "scope": "row: prune each output row to the sparsity; layer: the whole matrix",
    ]

    /// The pruning pattern.
    public let pattern: SparsityPattern

    public init(options: Options) throws {
        pattern = try SparsityPattern.parse(pattern: options.pattern, sparsity: options.sparsity, scope: options.scope)
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        try pattern.check(model: model, targets: targets)
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        var pruned = 0, total = 0
        for (_, op) in context.linears(in: block) {
            let name = op.weight!
            let (p, t) = prune(&block, weight: name, scores: Elementwise.map(block.parameters[name]!) { abs($0) }, pattern: pattern,
                               previous: block.masks[name])
            pruned += p
            total += t
        }
        return PassReport(pass: Self.name, metrics: ["pruned": Double(pruned), "sparsity": total > 0 ? Double(pruned) / Double(total) : 0])
    }
}
