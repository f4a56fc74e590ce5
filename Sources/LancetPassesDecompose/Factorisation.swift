import LancetIR
import LancetSurgery
import LancetTensor

/// What the SVD passes (`svd`, `asvd`, `svd-llm`) share: the linears they factorise, at which rank, the global rank
/// plan, and the report. A pass supplies only its input weighting (`InputWeighting`) and the analyses it reads.
struct Factorisation {
    /// The rank budget.
    let budget: RankBudget

    /// One targeted dense linear of a block: its node, weight and rank.
    struct Target {
        let node: Node
        let weightName: String
        let weight: Tensor
        let rank: Int
    }

    /// The targeted dense linears of `block` with their ranks.
    func targets(in block: Block, context: BlockPassContext) throws -> [Target] {
        try context.linears(in: block).map { node, op in
            let w = block.parameters[op.weight!]!
            return Target(node: node, weightName: op.weight!, weight: w,
                          rank: try budget.rank(of: node.name, out: w.shape[0], inputs: w.shape[1], context: context))
        }
    }

    /// Factorises every targeted linear of `block` under the weighting `weighting` gives it, and reports (the whole
    /// `apply` of a pass without an update).
    func factoriseAll(_ block: inout Block, context: BlockPassContext, pass: String,
                      weighting: (Target) throws -> InputWeighting) throws -> PassReport {
        var done: [(Target, LowRankFactors)] = []
        for t in try targets(in: block, context: context) {
            let f = try LowRankFactors.truncate(t.weight, weighting: try weighting(t), rank: t.rank)
            block.factorise(linear: t.node.name, into: f)
            done.append((t, f))
        }
        return Self.report(pass: pass, factorised: done)
    }

    /// The global allocation's model facts (`RankBudget.factKey` per node; nothing for a uniform budget). `analyses`
    /// and `weighting` say what the pass's spectra need (a data-free weighting plans without a calibration sweep);
    /// `probeWeighting` builds the weighting from a linear's inputs on the probe windows for the measured sensitivity
    /// (`TruncationSensitivity`, on the first `sensitivityWindows` windows; nil: every linear's own relative error).
    func plan(model: Model, context: PlanContext, method: String, analyses: @escaping (Node) -> [any BlockAnalysis],
              weighting: @escaping (Node, Block, BlockStatistics?) throws -> InputWeighting,
              probeWeighting: (@Sendable (Node, Tensor) throws -> InputWeighting)?, sensitivityWindows: Int) throws -> [String: [Double]] {
        guard case let .allocated(ratio) = budget.kind else { return [:] }
        var linears: [RankAllocation.Linear] = []
        let probe = RankBudget.Kind.uniform(ratio)
        func probes(_ i: Int, _ block: Block) -> [any BlockAnalysis] {
            guard let probeWeighting else { return [] }
            let ranked = context.targets.linears(in: block, index: i).map { node, op in
                let w = block.parameters[op.weight!]!
                return (node.name, RankBudget(kind: probe).uniformRank(out: w.shape[0], inputs: w.shape[1])!)
            }
            return ranked.isEmpty ? [] : [TruncationSensitivity(linears: ranked, windows: sensitivityWindows, weighting: probeWeighting, method: method)]
        }
        func collect(_ i: Int, _ block: Block, _ statistics: BlockStatistics?) throws {
            var measured: [String: Tensor] = [:]
            if let statistics, let p = probes(i, block).first as? TruncationSensitivity { measured = try statistics.value(of: p).sums }
            for (node, op) in context.targets.linears(in: block, index: i) {
                let w = block.parameters[op.weight!]!
                let spectrum = try LowRankFactors.spectrum(of: w, weighting: try weighting(node, block, statistics))
                var sensitivity = 1.0
                if let m = measured[node.name]?.scalars, m[1] > 0 { sensitivity = Double(m[0]) / Double(m[1]) }
                linears.append(.init(block: i, node: node.name, out: w.shape[0], inputs: w.shape[1], spectrum: spectrum, sensitivity: sensitivity))
            }
        }
        let needsData = probeWeighting != nil || model.blocks.enumerated().contains { i, b in
            context.targets.linears(in: b, index: i).contains { !analyses($0.node).isEmpty }
        }
        if needsData {
            context.log("rank allocation: spectra\(probeWeighting == nil ? "" : " and block-output sensitivities") of every targeted linear on one calibration sweep")
            try context.denseSweep(requests: { i, b in context.targets.linears(in: b, index: i).flatMap { analyses($0.node) } + probes(i, b) },
                                   visit: collect)
        } else {
            for (i, b) in model.blocks.enumerated() { try collect(i, b, nil) }
        }
        let (ranks, kept, total) = RankAllocation.allocate(linears, ratio: ratio)
        context.log("rank allocation: \(kept) of a budget of \(total) parameters in \(linears.count) linears")
        var facts: [String: [Double]] = [:]
        for (linear, rank) in zip(linears, ranks) {
            facts[RankBudget.factKey(linear.node), default: [Double](repeating: -1, count: model.blocks.count)][linear.block] = Double(rank)
        }
        return facts
    }

    /// `items` (linears, by their `node`) grouped by their input value, in the order those values are first read: the
    /// rounds in which a block's linears see the changes of every linear upstream of them (for a Llama block: q, k, v;
    /// o; gate, up; down).
    static func rounds<T>(of items: [T], node: (T) -> Node) -> [(value: String, items: [T])] {
        var rounds: [(value: String, items: [T])] = []
        for item in items {
            let value = node(item).inputs[0]
            if let i = rounds.firstIndex(where: { $0.value == value }) { rounds[i].items.append(item) } else { rounds.append((value, [item])) }
        }
        return rounds
    }

    /// The block's report: per linear its rank and the relative weighted truncation error, and the parameters of
    /// the targeted linears before and after.
    static func report(pass: String, factorised: [(target: Target, factors: LowRankFactors)]) -> PassReport {
        var metrics: [String: Double] = [:]
        var before = 0, after = 0, error = 0.0
        for (t, f) in factorised {
            metrics["rank.\(t.node.name)"] = Double(f.rank)
            metrics["truncation_error.\(t.node.name)"] = f.relativeTruncationError
            before += t.weight.count
            after += f.a.count + f.b.count
            error += f.relativeTruncationError
        }
        metrics["parameters_before"] = Double(before)
        metrics["parameters_after"] = Double(after)
        metrics["kept_ratio"] = before > 0 ? Double(after) / Double(before) : 1
        metrics["truncation_error"] = error
        return PassReport(pass: pass, metrics: metrics)
    }
}
