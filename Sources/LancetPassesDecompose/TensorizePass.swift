import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Cross-layer decomposition (in the spirit of TRAWL, "Tensor Reduced and Approximated Weights for Large Language
/// Models"): the same-role linears of a group of blocks (every block's `attn.q`, every block's `mlp.down`, …) are
/// stacked into a 3-way tensor [blocks, out, in] and decomposed with one inner factor A `[rank, in]` shared by the
/// whole group and an outer factor B_l per block (`SharedInnerFactor`: whitened HOSVD of the input mode, then
/// alternating least squares). A is stored once for the group: every block's low-rank linear holds the same tensor,
/// the runtime keeps it once and Lancet's archive writes it once (`Model.sharedParameterGroups`).
///
/// The rank meets `ratio` of the group's dense parameters: rank·in + blocks·out·rank ≤ ratio·blocks·out·in. With
/// `fit: lstsq` every block's outer factors are then refitted in closed form, block after block on the inputs the
/// tensorized model gives them, against the dense layers (like `svd-llm`'s update; the shared factor stays shared).
/// A regional fit would change the shared factor block by block and unshare it, so it is refused.
///
/// ```yaml
/// - tensorize: {ratio: 0.8}
///   targets: ["blocks.*.attn.*", "blocks.*.mlp.*"]
///   fit: lstsq
/// ```
public struct TensorizePass: ModelPass {
    public static let name = "tensorize"
    public static let summary = "Decompose same-role linears across blocks with one shared inner factor (whitened Tucker-2, HOSVD + ALS)."
    public static let fitsLocally = true
    public static let readsTargets = true

    /// Options of `tensorize`.
    public struct Options: Codable, Sendable {
        /// Share of each group's dense parameters kept.
        public var ratio = 0.8
        /// Consecutive blocks per group sharing a factor (0: every block holding the role).
        public var group = 0
        /// Ridge, relative to the mean diagonal, of the Grams (whitening and least squares).
        public var damping = 1e-4
        /// Alternating least-squares iterations after the HOSVD initialisation.
        public var iterations = 2
        /// Conjugate-gradient steps per A-step.
        public var cg_steps = 12
        /// Calibration windows per forward call (statistics and the fit).
        public var windows_per_call = 2
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "ratio": "share of each group's dense parameters kept, in (0, 1): rank·in (shared) + blocks·out·rank (per block)",
        "group": "consecutive blocks per group sharing one inner factor; 0 groups every block that holds the role",
        "damping": "λ = damping · mean diagonal added to the Grams before whitening and least squares",
        "iterations": "alternating least-squares iterations after the HOSVD initialisation (0: HOSVD and the exact outer factors only)",
        "cg_steps": "conjugate-gradient steps of each shared-factor update",
        "windows_per_call": "calibration windows per forward call",
    ]

    /// The options.
    public let options: Options

    public init(options: Options) throws {
        guard options.ratio > 0, options.ratio < 1 else { throw PassOptionError("ratio", "must be in (0, 1), got \(options.ratio)") }
        guard options.group >= 0, options.group != 1 else { throw PassOptionError("group", "must be 0 (every block) or at least 2, got \(options.group)") }
        guard options.damping > 0, options.damping < 1 else { throw PassOptionError("damping", "must be in (0, 1), got \(options.damping)") }
        guard options.iterations >= 0 else { throw PassOptionError("iterations", "must be 0 or more, got \(options.iterations)") }
        guard options.cg_steps >= 1 else { throw PassOptionError("cg_steps", "must be at least 1, got \(options.cg_steps)") }
        guard options.windows_per_call >= 1 else { throw PassOptionError("windows_per_call", "must be at least 1, got \(options.windows_per_call)") }
        self.options = options
    }

    /// One group: a role (node name) and the blocks sharing its inner factor.
    struct Group {
        let role: String
        let blocks: [Int]
    }

    /// The groups of `model`'s targeted dense linears: by node name and weight shape, `group` consecutive blocks each.
    func groups(in model: Model, targets: TargetSelection) -> [Group] {
        var byRole: [String: [Int]] = [:], order: [String] = []
        for (i, block) in model.blocks.enumerated() {
            for (node, op) in targets.linears(in: block, index: i) {
                let key = "\(node.name)|\(block.parameters[op.weight!]!.shape)"
                if byRole[key] == nil { order.append(key) }
                byRole[key, default: []].append(i)
            }
        }
        return order.flatMap { key -> [Group] in
            let role = String(key.split(separator: "|")[0]), blocks = byRole[key]!
            let size = options.group == 0 ? blocks.count : options.group
            return stride(from: 0, to: blocks.count, by: size).map { Group(role: role, blocks: Array(blocks[$0..<min($0 + size, blocks.count)])) }
        }
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        guard groups(in: model, targets: targets).contains(where: { $0.blocks.count > 1 }) else {
            throw PassOptionError("targets", "no linear role is held by two or more blocks: nothing to share")
        }
    }

    /// The shared rank of a group of `blocks` linears `[out, in]`.
    func rank(blocks: Int, out: Int, inputs: Int) -> Int {
        let r = options.ratio * Double(blocks * out * inputs) / Double(inputs + blocks * out)
        return max(1, min(Int(r.rounded(.down)), inputs))
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        guard context.fit.method != .regional else {
            throw PassOptionError("fit", "tensorize refits its per-block outer factors by least squares (fit: lstsq); a regional fit would change the shared factor in every block differently")
        }
        let dense = model
        let groups = self.groups(in: model, targets: context.targets)
        // One sweep: the Gram of every targeted input value of every block, on the dense model.
        var grams = [[String: Tensor]](repeating: [:], count: model.blocks.count)
        let wanted = groups.reduce(into: [Int: Set<String>]()) { table, g in
            for b in g.blocks { table[b, default: []].insert(dense.blocks[b].node(g.role)!.inputs[0]) }
        }
        context.log("tensorize: statistics of \(groups.count) groups on one calibration sweep")
        try context.sweep(dense) { chunk in
            guard let values = wanted[chunk.block] else { return }
            let captured = try BlockExecutor.forward(dense.blocks[chunk.block], index: chunk.block, input: chunk.input,
                                                     context: ExecutionContext(batch: chunk.windows.count, length: context.length),
                                                     capture: values, computeOutput: false).values
            for (value, x) in captured {
                if grams[chunk.block][value] == nil { grams[chunk.block][value] = Tensor(zeros: [x.shape[1], x.shape[1]]) }
                accumulateGram(x, into: &grams[chunk.block][value]!)
            }
        }
        var metrics: [String: Double] = [:], notes: [String] = []
        var before = 0, after = 0, shared = 0
        for (k, g) in groups.enumerated() {
            context.progress(k, groups.count, "tensorize")
            let first = dense.blocks[g.blocks[0]]
            let op = first.node(g.role)!.op as! LinearOp
            let weights = g.blocks.map { dense.blocks[$0].parameters[op.weight!]! }
            let input = first.node(g.role)!.inputs[0]
            let (out, inputs) = (weights[0].shape[0], weights[0].shape[1])
            let r = rank(blocks: g.blocks.count, out: out, inputs: inputs)
            let result = try SharedInnerFactor.fit(weights: weights, grams: g.blocks.map { grams[$0][input]! }, rank: r,
                                                   damping: options.damping, iterations: options.iterations, cgSteps: options.cg_steps)
            for (l, b) in g.blocks.enumerated() {
                model.blocks[b].factorise(linear: g.role, into: LowRankFactors(a: result.a, b: result.b[l], spectrum: []))
            }
            let name = "\(g.role)@\(g.blocks.first!)-\(g.blocks.last!)"
            metrics["rank.\(name)"] = Double(r)
            metrics["objective.\(name)"] = result.objective.last!
            before += weights.count * out * inputs
            after += r * inputs + g.blocks.count * out * r
            shared += r * inputs
            notes.append("\(name): rank \(r) shared by \(g.blocks.count) blocks; mean relative output error "
                         + result.objective.map { String(format: "%.4g", $0) }.joined(separator: " → "))
        }
        context.progress(groups.count, groups.count, "tensorize")
        metrics["parameters_before"] = Double(before)
        metrics["parameters_after"] = Double(after)
        metrics["shared_parameters"] = Double(shared)
        metrics["kept_ratio"] = before > 0 ? Double(after) / Double(before) : 1
        var report = PassReport(pass: Self.name, metrics: metrics, notes: notes)
        if context.fit.method == .lstsq {
            let (cut, fitted) = try refitOuterFactors(&model, dense: dense, context: context)
            report.errorAfterCut = cut
            report.errorAfterFit = fitted
            report.fit = "lstsq"
        }
        return report
    }

    /// Refits every block's outer factors given the shared inner ones, block after block on the inputs the tensorized
    /// model gives them, against the dense layers on the dense block's inputs. Returns the mean relative block-output
    /// error (against the dense block on the same inputs) before and after.
    func refitOuterFactors(_ model: inout Model, dense: Model, context: ModelPassContext) throws -> (Double, Double) {
        var x = try context.hiddenStates(enteringBlock: 0, of: model)
        var before = 0.0, after = 0.0
        for i in model.blocks.indices {
            context.progress(i, model.blocks.count, "fit")
            let teacher = try context.spanOutputs(i...i, inputs: x)
            before += try context.error(of: model.blocks[i], index: i, inputs: x, teacher: teacher)
            var block = model.blocks[i]
            let rounds = Factorisation.rounds(of: block.nodes(of: LinearOp.self).filter { n, op in
                op.factors != nil && (dense.blocks[i].node(n.name)?.op as? LinearOp)?.weight != nil
            }.map(\.node)) { $0 }
            let denseValues = try PairedInputStatistics.DenseValues(Set(rounds.map(\.value)), of: dense.blocks[i], index: i, inputs: x,
                                                                    length: context.length, windowsPerCall: options.windows_per_call)
            for round in rounds {
                let paired = try PairedInputStatistics(of: round.value, dense: denseValues, changed: block, index: i, inputs: x)
                for node in round.items {
                    let (a, b) = (block.node(node.name)!.op as! LinearOp).factors!
                    let w = dense.blocks[i].parameters[(dense.blocks[i].node(node.name)!.op as! LinearOp).weight!]!
                    block.parameters[b] = try paired.outerFactor(dense: w, inner: block.parameters[a]!, damping: options.damping)
                }
            }
            model.blocks[i] = block
            after += try context.error(of: block, index: i, inputs: x, teacher: teacher)
            try context.advance(&x, through: i..<(i + 1), of: model)
        }
        context.progress(model.blocks.count, model.blocks.count, "fit")
        return (before / Double(model.blocks.count), after / Double(model.blocks.count))
    }
}
