import Foundation
import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// The LLM Surgeon (van der Ouderaa et al., ICLR 2024): pruning by the curvature of the *model's loss*, not of
/// each layer's reconstruction. Per shot, one backward of the whole model over the curvature windows gives every
/// targeted linear's K-FAC factors (`KroneckerFactors`: F ≈ G ⊗ A, G from the loss gradients at the linear's
/// outputs under labels drawn from the model itself); the Optimal Brain Surgeon costs of every candidate structure
/// (`KroneckerCurvature`) are ranked against **one global threshold** across all blocks, the cheapest go, and the
/// remaining weights get the **correlated update** that compensates their removal. The target is reached over
/// `shots` shots (a linear schedule, the curvature recomputed on the pruned model each time), and each shot ends
/// with the recipe's `fit:` on every block against the dense block (between shots on the curvature windows, after
/// the last one on every calibration window).
///
/// Structures (`structure`):
/// - `rows`, `columns`, `rows+columns`: whole FFN channels and KV groups (`SurgeonStructures`), ranked by the cost
///   of their rows, their columns, or both, per parameter; the blocks really shrink (different widths per block,
///   which GGUF's `deci` architecture holds). `sparsity` is the share of the targeted linears' parameters removed.
/// - `unstructured`: single weights, masked; `sparsity` is the share of the targeted weights.
/// - `2:4`: two of every four consecutive inputs of every targeted linear (50%), groups chosen cheapest first
///   shot by shot until all are pruned.
///
/// Defaults scaled to a CPU: 5 shots (the paper: 40), the curvature from 8 windows of the calibration set (the
/// paper: 128 × 2048), chunks of 512 correlated elements (the paper: 2,000), damping 0.01 of each factor's mean
/// diagonal (the paper's default). See Docs/Surgeon.md.
///
/// ```yaml
/// - surgeon: {structure: rows+columns, sparsity: 0.2, shots: 5}
///   fit: lstsq
/// - surgeon: {structure: unstructured, sparsity: 0.5}
/// - surgeon: {structure: "2:4"}
/// ```
public struct SurgeonPass: ModelPass {
    /// What is removed.
    public enum Structure: String, Sendable, CaseIterable {
        case unstructured
        case semiStructured = "2:4"
        case rows
        case columns
        case rowsAndColumns = "rows+columns"

        /// Whether whole channels and KV groups go (the blocks shrink).
        public var removesStructures: Bool { self == .rows || self == .columns || self == .rowsAndColumns }
    }

    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// `unstructured`, `2:4`, `rows`, `columns` or `rows+columns`.
        public var structure = "rows+columns"
        /// Share removed (default 0.2 for structures, 0.5 for elements; `2:4` is always 0.5).
        public var sparsity: Double?
        /// Shots the target is reached over.
        public var shots = 5
        /// Calibration windows (the first ones) the curvature is computed on.
        public var windows = 8
        /// Calibration windows (the first ones) the input factor A is computed on, by a forward (nil: `windows`).
        public var inputWindows: Int?
        /// Windows per backward (memory: one batch's activations).
        public var batch = 1
        /// `sampled` (the model's own predictions: the true Fisher) or `data` (the empirical Fisher).
        public var labels = "sampled"
        /// Damping of G, relative to its mean diagonal.
        public var dampG = 0.01
        /// Damping of A, relative to its mean diagonal.
        public var dampA = 0.01
        /// `correlated` (the OBS update of the remaining weights) or `none`.
        public var update = "correlated"
        /// Elements whose removals are solved together (unstructured and 2:4).
        public var correlate = 512
        /// FFN channels a block keeps at least.
        public var minChannels = 32
        /// Each block's kept FFN width is rounded to a multiple of this (1: no rounding; 32 suits GGUF quant blocks and
        /// llama.cpp's kernels).
        public var channelMultiple = 1
        /// Whether KV groups (with their query heads) may be removed.
        public var attention = true
        /// `global` (one threshold across every targeted linear, the paper's) or `uniform` (each linear loses the
        /// same share of its weights; unstructured only).
        public var allocation = "global"
        /// What `fit: lstsq` refits after each shot: `output` (the linears writing each block's output, a span fit) or
        /// `every` (every linear against its twin in the dense block, as a block pass's `lstsq`).
        public var fitLinears = "output"
        /// How `2:4` picks the two weights of a chosen group: `independent` (each element's own cost on the shot's
        /// weights, the paper's) or `sequential` (an OBS sweep over the columns on A, `sequentialPairs`).
        public var pairs = "independent"

        /// Defaults.
        public init() {}

        enum CodingKeys: String, CodingKey {
            case structure, sparsity, shots, windows, batch, labels, update, correlate, attention, allocation
            case dampG = "damp_g", dampA = "damp_a", minChannels = "min_channels", channelMultiple = "channel_multiple"
            case fitLinears = "fit_linears"
            case pairs
            case inputWindows = "input_windows"
        }
    }

    /// How the remaining weights move.
    public enum Update: String, Sendable {
        case correlated
        case none
    }

    public static let name = "surgeon"
    public static let summary = "The LLM Surgeon: prune rows/columns (channels, KV groups), single weights or 2:4 by K-FAC curvature of the model's loss, global threshold, multi-shot, correlated updates."
    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "structure": "unstructured, 2:4, rows, columns or rows+columns (whole FFN channels and KV groups)",
        "sparsity": "share of the targeted linears' parameters removed (default 0.2 structured, 0.5 otherwise; 2:4 is 0.5)",
        "shots": "shots the target is reached over (linear schedule, curvature recomputed each shot)",
        "windows": "calibration windows (the first ones) the K-FAC curvature is computed on",
        "input_windows": "calibration windows (the first ones) the input factor A is computed on, by a forward only (default: windows)",
        "batch": "windows per backward of the curvature",
        "labels": "sampled: labels drawn from the model (true Fisher); data: the text's next tokens (empirical Fisher)",
        "damp_g": "damping of the output-gradient factor G, relative to its mean diagonal",
        "damp_a": "damping of the input factor A, relative to its mean diagonal",
        "update": "correlated: OBS update of the remaining weights; none: remove only",
        "correlate": "pruned elements solved together in the correlated update (unstructured, 2:4)",
        "min_channels": "FFN channels a block keeps at least",
        "channel_multiple": "round each block's kept FFN width to a multiple of this (1: none; 32: GGUF quant blocks, llama.cpp's kernels)",
        "attention": "whether whole KV groups with their query heads may go",
        "allocation": "global: one threshold across all targeted linears; uniform: every linear loses the same share (unstructured)",
        "pairs": "2:4: independent (each element's own cost, the paper's) or sequential (an OBS sweep over the columns on A chooses each group's two)",
        "fit_linears": "what fit: lstsq refits after each shot: output (the linears writing each block's output) or every (every linear against its dense twin)",
    ]
    public static var fitsLocally: Bool { true }
    public static var readsTargets: Bool { true }

    /// The validated options.
    public let options: Options
    /// The structure.
    public let structure: Structure
    /// The share removed.
    public let sparsity: Double
    /// The update.
    public let update: Update
    /// What the fit after each shot refits (`fit: lstsq`).
    public let fitLinears: BlockFitLinears

    /// A pass; throws `PassOptionError` naming the first bad option.
    public init(options: Options) throws {
        guard let structure = Structure(rawValue: options.structure) else {
            throw PassOptionError("structure", "must be one of \(Structure.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.structure)'")
        }
        let sparsity = options.sparsity ?? (structure.removesStructures ? 0.2 : 0.5)
        guard sparsity >= 0, sparsity < 1 else { throw PassOptionError("sparsity", "must be in [0, 1), got \(sparsity)") }
        if structure == .semiStructured, sparsity != 0.5 { throw PassOptionError("sparsity", "2:4 removes exactly 0.5, got \(sparsity)") }
        guard options.shots >= 1 else { throw PassOptionError("shots", "must be at least 1, got \(options.shots)") }
        guard options.windows >= 1 else { throw PassOptionError("windows", "must be at least 1, got \(options.windows)") }
        if let inputWindows = options.inputWindows, inputWindows < 1 {
            throw PassOptionError("input_windows", "must be at least 1, got \(inputWindows)")
        }
        guard options.batch >= 1 else { throw PassOptionError("batch", "must be at least 1, got \(options.batch)") }
        guard ["sampled", "data"].contains(options.labels) else { throw PassOptionError("labels", "must be sampled or data, got '\(options.labels)'") }
        guard options.dampG > 0, options.dampA > 0 else { throw PassOptionError(options.dampG > 0 ? "damp_a" : "damp_g", "must be positive") }
        guard let update = Update(rawValue: options.update) else { throw PassOptionError("update", "must be correlated or none, got '\(options.update)'") }
        guard options.correlate >= 1 else { throw PassOptionError("correlate", "must be at least 1, got \(options.correlate)") }
        guard options.minChannels >= 1 else { throw PassOptionError("min_channels", "must be at least 1, got \(options.minChannels)") }
        guard options.channelMultiple >= 1 else { throw PassOptionError("channel_multiple", "must be at least 1, got \(options.channelMultiple)") }
        guard ["global", "uniform"].contains(options.allocation) else {
            throw PassOptionError("allocation", "must be global or uniform, got '\(options.allocation)'")
        }
        if options.allocation == "uniform", structure != .unstructured {
            throw PassOptionError("allocation", "uniform applies to structure: unstructured (2:4 is uniform at its last shot; structures are global)")
        }
        guard let fitLinears = BlockFitLinears(rawValue: options.fitLinears) else {
            throw PassOptionError("fit_linears", "must be \(BlockFitLinears.allCases.map(\.rawValue).joined(separator: " or ")), got '\(options.fitLinears)'")
        }
        guard ["independent", "sequential"].contains(options.pairs) else {
            throw PassOptionError("pairs", "must be independent or sequential, got '\(options.pairs)'")
        }
        if options.pairs == "sequential", structure != .semiStructured {
            throw PassOptionError("pairs", "sequential applies to structure: 2:4")
        }
        self.options = options
        self.fitLinears = fitLinears
        self.structure = structure
        self.sparsity = sparsity
        self.update = update
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        for (b, block) in model.blocks.enumerated() {
            let nodes = targetedNodes(block, index: b, targets: targets)
            guard !nodes.isEmpty else { continue }
            if structure.removesStructures {
                do { try BlockSlicing.check(block) } catch { throw PassOptionError("structure", "block \(b): \(error)") }
            }
            for name in nodes {
                if structure == .semiStructured, let w = block.parameters[name + ".weight"], w.shape[1] % 4 != 0 {
                    throw PassOptionError("structure", "block \(b): '\(name)' has \(w.shape[1]) inputs, not a multiple of 4 (2:4 needs groups of four)")
                }
            }
        }
    }

    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? {
        guard structure.removesStructures, sparsity > 0 else { return nil }
        return "the surgeon's global threshold removes different numbers of FFN channels and KV groups in different blocks"
    }

    /// The linears of `block` the pass prunes: for structures, the MLP's three when the whole MLP is targeted and the
    /// attention's four when all are (and `attention` allows it); otherwise every targeted linear (`linears(in:)` gives
    /// the dense ones only).
    func targetedNodes(_ block: Block, index: Int, targets: TargetSelection) -> [String] {
        let selected = Set(targets.linears(in: block, index: index).map(\.node.name))
        guard structure.removesStructures else { return selected.sorted() }
        var nodes: [String] = []
        if options.attention, SurgeonStructures.attentionNodes.allSatisfy(selected.contains), LlamaBlock.attentionSizes(of: block) != nil {
            nodes += SurgeonStructures.attentionNodes
        }
        if targets.selectsWholeMLP(block, index: index) { nodes += SurgeonStructures.mlpNodes }
        return nodes
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        var report = PassReport(pass: Self.name)
        let nodes = model.blocks.enumerated().map { targetedNodes($1, index: $0, targets: context.targets) }
        let targeted = Self.parameters(of: model, nodes: nodes)
        let windows = 0..<min(options.windows, context.windowCount)
        let inputWindows = options.inputWindows.map { 0..<min($0, context.windowCount) }
        var fitted: (before: Double, after: Double)?
        for shot in 1...options.shots {
            let started = Date()
            let fraction = sparsity * Double(shot) / Double(options.shots)
            let labels: ModelGradients.Labels = options.labels == "data" ? .data : .sampled(seed: context.seed &+ UInt64(shot))
            let (store, loss) = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: labels, windows: windows,
                                                             windowsPerBatch: options.batch, inputWindows: inputWindows)
            // One block's curvature in memory at a time: read from the store when a block is costed, again when it is cut.
            let curvature = { (block: Int) throws -> [String: KroneckerCurvature] in
                try store.factors(block: block).mapValues { try KroneckerCurvature($0, dampG: self.options.dampG, dampA: self.options.dampA) }
            }
            let removed: Int
            if structure.removesStructures {
                removed = try removeStructures(&model, nodes: nodes, curvature: curvature, target: Int((fraction * Double(targeted)).rounded()),
                                               original: targeted)
            } else {
                removed = try removeElements(&model, nodes: nodes, curvature: curvature, fraction: fraction, shot: shot)
            }
            let cut = Date().timeIntervalSince(started)
            if context.fit.method != .none {
                // Between shots the fit reads the curvature windows; the last shot's fit reads every calibration window.
                fitted = try context.fitBlocks(&model, windows: 0..<(shot == options.shots ? context.windowCount : windows.count),
                                               linears: fitLinears)
            }
            let seconds = Date().timeIntervalSince(started)
            report.metrics["loss.shot.\(shot)"] = loss
            report.metrics["seconds.shot.\(shot)"] = seconds
            context.log("surgeon: shot \(shot)/\(options.shots): curvature loss \(String(format: "%.4f", loss)), \(removed) parameters removed so far "
                        + "(target \(String(format: "%.3f", fraction))), cut \(String(format: "%.1f", cut)) s, shot \(String(format: "%.1f", seconds)) s")
            context.progress(shot, options.shots, "shots")
        }
        let remaining = Self.parameters(of: model, nodes: nodes, kept: true)
        report.metrics["shots"] = Double(options.shots)
        report.metrics["targeted_parameters"] = Double(targeted)
        report.metrics["pruned_parameters"] = Double(targeted - remaining)
        report.metrics["sparsity"] = targeted > 0 ? Double(targeted - remaining) / Double(targeted) : 0
        report.errorAfterCut = fitted?.before
        report.errorAfterFit = fitted?.after
        if structure.removesStructures {
            report.notes = model.blocks.enumerated().map { b, block in
                let a = LlamaBlock.attentionSizes(of: block)
                return "block \(b): \(a?.heads ?? 0) query / \(a?.kvHeads ?? 0) KV heads, \(LlamaBlock.ffnWidth(of: block) ?? 0) FFN channels"
            }
        }
        return report
    }

    /// Removes the cheapest structures (per parameter) until `target` of the `original` targeted parameters are gone.
    func removeStructures(_ model: inout Model, nodes: [[String]], curvature: (Int) throws -> [String: KroneckerCurvature], target: Int,
                          original: Int) throws -> Int {
        var units: [SurgeonStructures.Unit] = [], channels: [Int: Int] = [:], groups: [Int: Int] = [:]
        for (b, block) in model.blocks.enumerated() where !nodes[b].isEmpty {
            let names = Set(nodes[b])
            units += try SurgeonStructures.units(of: block, index: b, structure: structure, mlp: names.contains("mlp.down"),
                                                 attention: names.contains("attn.q"), curvature: try curvature(b))
            channels[b] = LlamaBlock.ffnWidth(of: block) ?? 0
            groups[b] = LlamaBlock.attentionSizes(of: block)?.kvHeads ?? 0
        }
        let gone = original - Self.parameters(of: model, nodes: nodes)
        let chosen = SurgeonStructures.roundingWidths(
            SurgeonStructures.select(units, parameters: target - gone, minChannels: options.minChannels, channels: channels, groups: groups),
            units: units, multiple: options.channelMultiple, minChannels: options.minChannels, channels: channels)
        for (b, kinds) in chosen {
            model.blocks[b] = try SurgeonStructures.remove(kinds, from: model.blocks[b], curvature: try curvature(b), update: update == .correlated)
        }
        return original - Self.parameters(of: model, nodes: nodes)
    }

    /// Masks the cheapest elements (or 2:4 groups) of the whole model up to `fraction` and updates the rest.
    func removeElements(_ model: inout Model, nodes: [[String]], curvature: (Int) throws -> [String: KroneckerCurvature], fraction: Double,
                        shot: Int) throws -> Int {
        var linears: [SurgeonElements.Costs] = []
        for (b, names) in nodes.enumerated() where !names.isEmpty {
            let block = try curvature(b)
            for name in names {
                guard let c = block[name], let w = model.blocks[b].parameters[name + ".weight"] else { continue }
                linears.append(.init(block: b, node: name, costs: c.elementCosts(w)))
            }
        }
        let total = linears.reduce(0) { $0 + $1.costs.count }
        let masks = structure == .semiStructured
            ? SurgeonElements.semiStructured(linears, count: Int((Double(total / 4) * Double(shot) / Double(options.shots)).rounded()))
            : options.allocation == "uniform"
                ? linears.map { SurgeonElements.unstructured([$0], count: Int((fraction * Double($0.costs.count)).rounded()))[0] }
                : SurgeonElements.unstructured(linears, count: Int((fraction * Double(total)).rounded()))
        var pruned = 0, loaded: (block: Int, curvature: [String: KroneckerCurvature])?
        for (linear, fresh) in zip(linears, masks) {
            let name = linear.node + ".weight"
            var block = model.blocks[linear.block]
            var w = block.parameters[name]!
            let sequential = structure == .semiStructured && options.pairs == "sequential"
            if (update == .correlated || sequential), loaded?.block != linear.block { loaded = (linear.block, try curvature(linear.block)) }
            let mask = sequential
                ? try loaded!.curvature[linear.node]!.sequentialPairs(w, fresh: fresh, existing: block.masks[name])
                : block.masks[name].map { fresh.intersection($0) } ?? fresh
            if update == .correlated {
                try loaded!.curvature[linear.node]!.removeElements(&w, mask: mask, correlate: options.correlate)
            }
            block.setMasked(name, weight: w, mask: mask)
            model.blocks[linear.block] = block
            pruned += mask.prunedCount
        }
        return pruned
    }

    /// The parameters of the linears `nodes` of every block (`kept`: only the unmasked ones).
    static func parameters(of model: Model, nodes: [[String]], kept: Bool = false) -> Int {
        var total = 0
        for (b, names) in nodes.enumerated() where b < model.blocks.count {
            for name in names {
                guard let w = model.blocks[b].parameters[name + ".weight"] else { continue }
                total += kept ? (model.blocks[b].masks[name + ".weight"].map { $0.keep.count - $0.prunedCount } ?? w.count) : w.count
            }
        }
        return total
    }
}
