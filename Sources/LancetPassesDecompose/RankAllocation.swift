import LancetIR

/// Chooses every targeted linear's rank so that together they keep a given share of their parameters, spending
/// the parameters where they buy the most: each singular component of each linear is worth the error it removes per
/// parameter it costs (out + in), and the components are taken greedily in that order until the budget is spent. The
/// error of component i is its share of the linear's weighted energy, σᵢ² / Σⱼ σⱼ² (the relative output error of the
/// linear, exact under whitening), times the linear's `sensitivity`: the block-output error per unit of that share,
/// measured (`TruncationSensitivity`), so that components of linears whose errors the block amplifies count more.
///
/// Within a linear the components come in descending order, so the greedy choice keeps a prefix of each spectrum: a
/// rank. Every linear keeps at least rank 1 and at most the break-even rank ⌊out·in / (out + in)⌋ (beyond it
/// the factors would hold more than the dense weight). The budget is met exactly in the sense that the kept
/// parameters never exceed ⌊ratio · Σ out·in⌋ and fall short of it by less than the cheapest component still
/// left out (`RankAllocationTests`).
public enum RankAllocation {
    /// One targeted linear: where it is, its shape and its weighted spectrum (descending).
    public struct Linear: Sendable {
        /// The block index.
        public var block: Int
        /// The node name.
        public var node: String
        /// Output features.
        public var out: Int
        /// Input features.
        public var inputs: Int
        /// Singular values of the weighted weight, descending.
        public var spectrum: [Float]
        /// Block-output error per unit of the linear's relative weighted truncation energy (1: the linear's own error).
        public var sensitivity: Double

        /// A linear.
        public init(block: Int, node: String, out: Int, inputs: Int, spectrum: [Float], sensitivity: Double = 1) {
            self.block = block
            self.node = node
            self.out = out
            self.inputs = inputs
            self.spectrum = spectrum
            self.sensitivity = sensitivity
        }

        /// Parameters one rank costs.
        public var costPerRank: Int { out + inputs }
        /// The largest rank worth factorising.
        public var maximumRank: Int { max(1, min(out * inputs / (out + inputs), spectrum.count)) }
    }

    /// The chosen ranks (same order as `linears`) and the parameters they keep, for a budget of `ratio` of the linears'
    /// dense parameters.
    public static func allocate(_ linears: [Linear], ratio: Double) -> (ranks: [Int], kept: Int, budget: Int) {
        let dense = linears.reduce(0) { $0 + $1.out * $1.inputs }
        let budget = Int((ratio * Double(dense)).rounded(.down))
        var ranks = linears.map { _ in 1 }
        var kept = linears.reduce(0) { $0 + $1.costPerRank }
        // Every component beyond the first, scored by relative energy per parameter.
        var candidates: [(score: Double, linear: Int, index: Int)] = []
        for (l, linear) in linears.enumerated() {
            let total = linear.spectrum.reduce(0.0) { $0 + Double($1) * Double($1) }
            guard total > 0 else { continue }
            for i in 1..<max(1, linear.maximumRank) {
                let s = Double(linear.spectrum[i])
                candidates.append((linear.sensitivity * s * s / total / Double(linear.costPerRank), l, i))
            }
        }
        // Descending score; ties in spectrum order, so a linear's components stay a prefix.
        candidates.sort { ($0.score, -$0.index, -$0.linear) > ($1.score, -$1.index, -$1.linear) }
        for c in candidates {
            let cost = linears[c.linear].costPerRank
            guard ranks[c.linear] == c.index, kept + cost <= budget else { continue }
            ranks[c.linear] += 1
            kept += cost
        }
        return (ranks, kept, budget)
    }
}
