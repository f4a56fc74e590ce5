import LancetTensor

/// An FFN's channels split into one always-active shared group and routed experts of equal size, with each routed
/// expert's representative channel (the one the analytical router scores it by).
public struct ExpertPartition: Sendable, Equatable {
    /// The shared group's channels (empty without shared experts).
    public var shared: [Int]
    /// Each routed expert's channels, ascending.
    public var experts: [[Int]]
    /// Each routed expert's representative channel (one of its channels).
    public var representatives: [Int]

    /// CMoE's carving (Pei et al. 2025, "CMoE: Fast Carving of Mixture-of-Experts for Efficient LLM Inference"): the
    /// `sharedChannels` most often active channels form the shared group; the others are split into `experts` groups
    /// of equal size by one round of balanced clustering of their activation patterns (Hamming distance to seeds — the
    /// patterns of the `experts` most often active remaining channels —, a balanced assignment, then each group's
    /// centroid as the mean of its members' patterns); each group's representative is its member nearest (L1) to the
    /// centroid.
    public static func cmoe(markers: MarkerMatrix, experts: Int, sharedChannels: Int) -> ExpertPartition {
        let byRate = Array(0..<markers.channels).sorted { markers.counts[$0] != markers.counts[$1] ? markers.counts[$0] > markers.counts[$1] : $0 < $1 }
        let shared = Array(byRate.prefix(sharedChannels))
        let sharedSet = Set(shared)
        let remaining = (0..<markers.channels).filter { !sharedSet.contains($0) }
        let seeds = Array(byRate.dropFirst(sharedChannels).prefix(experts))
        let cost = remaining.map { c in seeds.map { markers.hammingDistance(c, $0) } }
        let group = BalancedAssignment.solve(cost: cost, groups: experts)
        var members = [[Int]](repeating: [], count: experts)
        for (i, c) in remaining.enumerated() { members[group[i]].append(c) }
        return ExpertPartition(shared: shared, experts: members, representatives: members.map { representative(of: $0, markers: markers) })
    }

    /// The control: every channel placed at random (seeded), the shared group first, then equal routed experts; the
    /// representatives as in `cmoe`.
    public static func random(markers: MarkerMatrix, experts: Int, sharedChannels: Int, seed: UInt64) -> ExpertPartition {
        var g = SeededGenerator(seed: seed)
        var order = Array(0..<markers.channels)
        order.shuffle(seededBy: &g)
        let shared = Array(order.prefix(sharedChannels)).sorted()
        let rest = Array(order.dropFirst(sharedChannels))
        let size = rest.count / experts
        let groups = (0..<experts).map { Array(rest[($0 * size)..<(($0 + 1) * size)]).sorted() }
        return ExpertPartition(shared: shared, experts: groups, representatives: groups.map { representative(of: $0, markers: markers) })
    }

    /// The member of `channels` whose pattern is nearest (L1) to the mean of their patterns (the first on ties).
    /// For a 0/1 pattern b and the mean m, ‖b − m‖₁ = Σ m + Σ_{t: b_t = 1} (1 − 2 m_t): only active tokens count.
    static func representative(of channels: [Int], markers: MarkerMatrix) -> Int {
        var mean = [Double](repeating: 0, count: markers.tokens)
        let active = channels.map { markers.activeTokens($0) }
        for tokens in active { for t in tokens { mean[t] += 1 } }
        for t in mean.indices { mean[t] /= Double(max(channels.count, 1)) }
        var best = channels[0], bestDistance = Double.infinity
        for (c, tokens) in zip(channels, active) {
            let distance = tokens.reduce(0.0) { $0 + 1 - 2 * mean[$1] }
            if distance < bestDistance { (best, bestDistance) = (c, distance) }
        }
        return best
    }
}
