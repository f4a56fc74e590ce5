import LancetIR
import LancetSurgery

/// How many ranks the targeted linears keep: one `rank` for every linear, or a `ratio` of their parameters, either
/// uniformly (every linear keeps that share of its own parameters) or allocated across all linears of all blocks
/// (`RankAllocation`: the same total, more where the spectrum says it matters).
public struct RankBudget: Sendable, Equatable {
    /// What the budget is.
    public enum Kind: Sendable, Equatable {
        /// Every linear keeps this rank (at most min(out, in)); the control for tests and sweeps.
        case rank(Int)
        /// Every linear keeps `ratio` of its parameters: rank ⌊ratio·out·in / (out + in)⌋.
        case uniform(Double)
        /// The targeted linears of the whole model keep `ratio` of their parameters together, ranks chosen by
        /// `RankAllocation`.
        case allocated(Double)
    }

    /// The budget.
    public let kind: Kind

    /// A budget of `kind`.
    public init(kind: Kind) { self.kind = kind }

    /// Parses the shared options `rank`, `ratio` and `allocation` (`uniform` or `global`), naming the bad one.
    public init(rank: Int, ratio: Double, allocation: String) throws {
        guard rank >= 0 else { throw PassOptionError("rank", "must be 0 (use ratio) or positive, got \(rank)") }
        guard ratio > 0, ratio <= 1 else { throw PassOptionError("ratio", "must be in (0, 1], got \(ratio)") }
        switch allocation {
        case "uniform": kind = rank > 0 ? .rank(rank) : .uniform(ratio)
        case "global":
            guard rank == 0 else { throw PassOptionError("rank", "a fixed rank cannot be allocated; give ratio with allocation: global") }
            kind = .allocated(ratio)
        default: throw PassOptionError("allocation", "must be uniform or global, got '\(allocation)'")
        }
    }

    /// The rank a linear `[out, in]` keeps without a global allocation (nil for `.allocated`, decided in `plan`).
    public func uniformRank(out: Int, inputs: Int) -> Int? {
        switch kind {
        case let .rank(r): return min(r, min(out, inputs))
        case let .uniform(ratio): return max(1, Int((ratio * Double(out * inputs) / Double(out + inputs)).rounded(.down)))
        case .allocated: return nil
        }
    }

    /// The model-fact key under which `plan` leaves the allocated rank of node `name` (one value per block, -1 where the
    /// node is not targeted).
    public static func factKey(_ name: String) -> String { "rank.\(name)" }

    /// The rank of the linear `node` `[out, in]` in the block `context` describes: uniform, or the allocated one.
    public func rank(of node: String, out: Int, inputs: Int, context: BlockPassContext) throws -> Int {
        if let r = uniformRank(out: out, inputs: inputs) { return r }
        guard let ranks = context.modelFacts[Self.factKey(node)], context.blockIndex < ranks.count, ranks[context.blockIndex] >= 0 else {
            throw PassOptionError("allocation", "no allocated rank for '\(node)' in block \(context.blockIndex) (was the plan skipped?)")
        }
        return Int(ranks[context.blockIndex])
    }
}
