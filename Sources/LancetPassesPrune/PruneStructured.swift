import LancetIR
import LancetSurgery
import LancetTensor

/// Structured pruning: removes whole attention heads and FFN channels (and, below a threshold, whole
/// sub-layers) so that the block's tensors really shrink and the graph is rebuilt with the new sizes.
///
/// Per block, the pass removes `sparsity` of the parameters of the selected sub-layers' linears
/// (`attn.{q,k,v,o}` weights and biases, `mlp.{gate,up,down}` weights; norm scales are not counted):
/// - an FFN channel `c` is row `c` of `mlp.gate` and `mlp.up` and column `c` of `mlp.down`;
/// - in `heads: kv-groups` mode a unit is a KV head with its whole query group (the group's rows of
///   `attn.q`, the KV head's rows of `attn.k` and `attn.v`, the group's columns of `attn.o`);
/// - in `heads: even` mode a unit is one query head from every group (rows of `attn.q`, columns of
///   `attn.o`), so every KV head stays and every group keeps the same number of query heads.
///
/// Units are ranked by the importance scores of `PruneStructured+Importance.swift` and the lowest are
/// removed; how the budget is split between heads and channels is `attention_share`, or, when it is
/// unset, follows the scores (see `PruneStructured+Budget.swift`). A sub-layer of the block is cut only
/// when all of its linears are selected by the recipe's targets. Existing masks are sliced with their
/// weights. With `fit: lstsq` the pipeline refits `mlp.down` and `attn.o` (whose input columns shrank)
/// to reproduce the dense outputs.
///
/// ```yaml
/// - prune-structured:
///     sparsity: 0.2
///     heads: kv-groups
///     channel_multiple: 32
///   targets: ["blocks.*"]
///   ignore: ["blocks.0.*"]
///   fit: {method: lstsq, damping: 0.01}
/// ```
public struct PruneStructuredPass: BlockPass {
    public static let name = "prune-structured"
    public static let summary = "Remove whole attention heads (GQA-aware) and FFN channels by activation/Taylor importance; tensors shrink."
    /// Reads calibration activations (scores, statistics), so the run needs calibration data.
    public static let needsCalibration = true
    /// Reads block inputs and statistics only, never the dense block's outputs.
    public static let readsDenseOutputs = false

    /// Options of `prune-structured`.
    public struct Options: Codable, Sendable {
        /// Fraction of the selected sub-layers' linear parameters removed per block.
        public var sparsity = 0.2
        /// Fraction of the removal taken from attention heads; nil derives the split from the scores.
        public var attentionShare: Double? = nil
        /// `kv-groups` or `even`.
        public var heads = "kv-groups"
        /// Query heads a block keeps at least.
        public var minHeads = 1
        /// Whether head removal may take every head, removing the attention sub-layer.
        public var allowRemoveAttention = false
        /// FFN channels a block keeps at least.
        public var minChannels = 1
        /// The kept FFN width is rounded to a multiple of this.
        public var channelMultiple = 32
        /// Weight λ of the first-order Taylor term in the scores (0: activations only).
        public var taylorWeight = 0.0
        /// A sub-layer whose relative output norm is below this is removed whole; nil never removes one.
        public var removeSublayerBelow: Double? = nil
        /// Defaults.
        public init() {}

        enum CodingKeys: String, CodingKey {
            case sparsity, heads
            case attentionShare = "attention_share", minHeads = "min_heads", allowRemoveAttention = "allow_remove_attention"
            case minChannels = "min_channels", channelMultiple = "channel_multiple", taylorWeight = "taylor_weight"
            case removeSublayerBelow = "remove_sublayer_below"
        }
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "sparsity": "fraction in [0, 1) of the selected attention+MLP linear parameters removed per block",
        "attention_share": "fraction in [0, 1] of the removal taken from heads; unset: split by the scores (lowest score per parameter first)",
        "heads": "kv-groups: remove KV heads with their query groups; even: remove query heads evenly from every group",
        "min_heads": "query heads each block keeps at least (≥ 1 unless allow_remove_attention)",
        "allow_remove_attention": "let head removal take every head, removing the attention sub-layer",
        "min_channels": "FFN channels each block keeps at least (≥ 1)",
        "channel_multiple": "round the kept FFN width to a multiple of this (32: GGUF legacy/Q8_0 quant blocks; 256 for K-quants)",
        "taylor_weight": "λ ≥ 0: add λ × the first-order Taylor term |g·w| (rescaled to the activation term's total) to each score",
        "remove_sublayer_below": "remove a whole attention or FFN sub-layer whose output norm is below this fraction of the block input's norm",
    ]

    /// How heads are grouped into removal units.
    public enum HeadMode: String, Sendable {
        /// A KV head together with its query group.
        case kvGroups = "kv-groups"
        /// One query head from every group.
        case even
    }

    /// The validated options.
    public let options: Options
    /// The head mode.
    public let headMode: HeadMode

    public init(options: Options) throws {
        guard options.sparsity >= 0 && options.sparsity < 1 else {
            throw PassOptionError("sparsity", "must be in [0, 1), got \(options.sparsity)")
        }
        if let s = options.attentionShare, !(s >= 0 && s <= 1) {
            throw PassOptionError("attention_share", "must be in [0, 1] or unset, got \(s)")
        }
        guard let mode = HeadMode(rawValue: options.heads) else {
            throw PassOptionError("heads", "must be 'kv-groups' or 'even', got '\(options.heads)'")
        }
        let leastHeads = options.allowRemoveAttention ? 0 : 1
        guard options.minHeads >= leastHeads else {
            throw PassOptionError("min_heads", "must be ≥ \(leastHeads)\(leastHeads == 1 ? " (set allow_remove_attention: true to allow 0)" : ""), got \(options.minHeads)")
        }
        guard options.minChannels >= 1 else { throw PassOptionError("min_channels", "must be ≥ 1, got \(options.minChannels)") }
        guard options.channelMultiple >= 1 else {
            throw PassOptionError("channel_multiple", "must be ≥ 1, got \(options.channelMultiple)")
        }
        guard options.taylorWeight >= 0 && options.taylorWeight.isFinite else {
            throw PassOptionError("taylor_weight", "must be a finite number ≥ 0, got \(options.taylorWeight)")
        }
        if let t = options.removeSublayerBelow, !(t >= 0 && t.isFinite) {
            throw PassOptionError("remove_sublayer_below", "must be a finite number ≥ 0 or unset, got \(t)")
        }
        self.options = options
        headMode = mode
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        for (i, block) in model.blocks.enumerated() {
            _ = try Self.selectedSublayers(of: block, index: i, selected: targets.linears(in: block, index: i).map(\.node.name))
        }
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        guard let cut = try? Self.selectedSublayers(of: block, index: context.blockIndex, selected: context.linears(in: block).map(\.node.name))
        else { return [] }
        var keys: [any BlockAnalysis] = []
        if cut.attention { keys.append(InputGram(value: "attn")) }
        if cut.mlp { keys.append(InputGram(value: "act")) }
        if options.taylorWeight > 0 && (cut.attention || cut.mlp) { keys.append(RegionalGradient()) }
        return keys
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let cut = try Self.selectedSublayers(of: block, index: context.blockIndex, selected: context.linears(in: block).map(\.node.name))
        let attention = LlamaBlock.attentionSizes(of: block)
        let ffn = LlamaBlock.ffnWidth(of: block)
        let before = block.parameterCount
        guard cut.attention || cut.mlp else {
            return PassReport(pass: Self.name, metrics: ["parameters_before": Double(before), "parameters_after": Double(before)],
                              notes: ["no attention or MLP sub-layer of this block is selected; left as it is"])
        }
        let importance = try Importance.compute(block: block, cutAttention: cut.attention, cutMLP: cut.mlp, headMode: headMode,
                                                taylorWeight: options.taylorWeight, context: context)
        let plan = Budget(options: options, headMode: headMode).plan(block: block, cutAttention: cut.attention, cutMLP: cut.mlp,
                                                                     importance: importance)
        block = try Slicing.apply(plan, to: block)

        let after = LlamaBlock.attentionSizes(of: block)
        let ffnAfter = LlamaBlock.ffnWidth(of: block)
        var metrics: [String: Double] = [
            "parameters_before": Double(before), "parameters_after": Double(block.parameterCount),
            "removed_fraction": plan.selectedParameters > 0 ? Double(plan.removedParameters) / Double(plan.selectedParameters) : 0,
        ]
        var notes: [String] = []
        if let a = attention {
            metrics["heads_before"] = Double(a.heads)
            metrics["heads_after"] = Double(after?.heads ?? 0)
            metrics["heads_removed"] = Double(a.heads - (after?.heads ?? 0))
            metrics["kv_heads_before"] = Double(a.kvHeads)
            metrics["kv_heads_after"] = Double(after?.kvHeads ?? 0)
            notes.append("heads \(a.heads) → \(after?.heads ?? 0), KV heads \(a.kvHeads) → \(after?.kvHeads ?? 0)")
        }
        if let ffn {
            metrics["channels_before"] = Double(ffn)
            metrics["channels_after"] = Double(ffnAfter ?? 0)
            metrics["channels_removed"] = Double(ffn - (ffnAfter ?? 0))
            notes.append("FFN channels \(ffn) → \(ffnAfter ?? 0)")
        }
        if let s = importance.attentionLayer { metrics["attention_importance"] = s }
        if let s = importance.mlpLayer { metrics["mlp_importance"] = s }
        if plan.removeAttention { notes.append("attention sub-layer removed") }
        if plan.removeMLP { notes.append("MLP sub-layer removed") }
        return PassReport(pass: Self.name, metrics: metrics, notes: notes)
    }

    /// Which sub-layers of `block` the selection lets the pass cut. A sub-layer is cut only as a whole, so
    /// a selection of some but not all of its linears is an error; a block that is not a Llama block as
    /// `LlamaBlock.make` builds it (or has low-rank linears) is an error when anything in it is selected.
    static func selectedSublayers(of block: Block, index: Int, selected: [String]) throws -> (attention: Bool, mlp: Bool) {
        let chosen = Set(selected)
        func part(_ names: [String], _ what: String) throws -> Bool {
            let picked = names.filter { chosen.contains($0) }
            guard picked.isEmpty || picked.count == names.count else {
                throw StructuredPruneError(block: index, "prune-structured cuts whole \(what); select all of \(names.joined(separator: ", ")) or none (selected: \(picked.joined(separator: ", ")))")
            }
            return !picked.isEmpty
        }
        let attention = try part(Slicing.attentionLinears, "heads"), mlp = try part(Slicing.mlpLinears, "FFN channels")
        if attention || mlp { try Slicing.checkRebuildable(block, index: index) }
        return (attention, mlp)
    }
}

/// A block that `prune-structured` cannot cut, or a selection it cannot honour, with the block's index.
public struct StructuredPruneError: Error, CustomStringConvertible, Equatable {
    /// The block index.
    public let block: Int
    /// What is wrong.
    public let reason: String
    /// Creates an error.
    public init(block: Int, _ reason: String) {
        self.block = block
        self.reason = reason
    }
    public var description: String { "block \(block): \(reason)" }
}
