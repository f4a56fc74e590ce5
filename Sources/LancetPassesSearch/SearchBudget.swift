import LancetIR

/// What a searched architecture may cost, and its cost: block parameters, block FLOPs of a prefill (the IR's cost
/// model), or predicted prefill seconds (a `LatencyTable` of this machine). A candidate meets the budget when its
/// cost lies in [`upper` − `slack`, `upper`]: at most the target, and not so far below it that the comparison with
/// a method cut to the target is unfair (`slack` is the tolerance, but at least one and a half FFN width steps).
public struct SearchBudget {
    /// The measure.
    public enum Kind: String, Sendable, CaseIterable {
        case params
        case flops
        case latency
    }

    /// The measure.
    public let kind: Kind
    /// The dense architecture's cost.
    public let dense: Double
    /// The most a candidate may cost.
    public let upper: Double
    /// How far below `upper` a candidate may fall.
    public let slack: Double
    /// The cost of an architecture.
    public let cost: (Architecture) -> Double

    /// A budget of `target` × the dense cost under `kind`, with candidates allowed `tolerance` × the dense cost below it.
    /// `tokens` is the prefill length FLOPs are counted at; `latency` is required for `.latency`.
    public init(_ kind: Kind, target: Double, tolerance: Double, space: SearchSpace, model: Model, rankings: [UnitRanking], tokens: Int,
                latency: LatencyTable? = nil) throws {
        self.kind = kind
        switch kind {
        case .params:
            cost = { Double(space.parameters($0)) }
        case .flops:
            // FLOPs depend on a block's shapes only: one slice per distinct (block space, choice).
            let hidden = model.config.hiddenSize
            var firstOf: [SearchSpace.BlockSpace: Int] = [:]
            for (b, s) in space.blocks.enumerated() where firstOf[s] == nil { firstOf[s] = b }
            let box = MemoBox()
            cost = { architecture in
                var total = 0.0
                for (s, c) in zip(space.blocks, architecture) {
                    if let f = box.memo[s]?[c] { total += f; continue }
                    let b = firstOf[s]!
                    let block = (try? rankings[b].sliced(model.blocks[b], c, dense: s.dense)) ?? model.blocks[b]
                    let f = CostModel.cost(of: block, tokens: tokens, hiddenSize: hidden).flops
                    box.memo[s, default: [:]][c] = f
                    total += f
                }
                return total
            }
        case .latency:
            guard let table = latency else { throw SearchError("a latency budget needs a latency table") }
            cost = { table.predict($0) }
        }
        dense = cost(space.dense)
        upper = target * dense
        // The band is at least one and a half FFN steps wide, so that stepping widths can always land in it.
        var stepped = space.dense
        if let b = space.blocks.indices.first(where: { space.blocks[$0].searched && space.blocks[$0].widths.count > 1 }) {
            let widths = space.blocks[b].widths
            stepped[b].channels = widths[widths.count - 2]
        }
        slack = max(tolerance * dense, 1.5 * (dense - cost(stepped)))
    }

    /// Whether `architecture` meets the budget.
    public func admits(_ architecture: Architecture) -> Bool {
        let c = cost(architecture)
        return c <= upper * (1 + 1e-12) && c >= upper - slack
    }
}

/// The FLOP memo the budget's cost closure fills.
final class MemoBox {
    var memo: [SearchSpace.BlockSpace: [BlockChoice: Double]] = [:]
}
