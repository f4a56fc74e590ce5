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
    /// centroid. With `sharedOrder` (every channel, most important first) the shared group is its first
    /// `sharedChannels` channels instead of the most often active ones.
    public static func cmoe(markers: MarkerMatrix, experts: Int, sharedChannels: Int, sharedOrder: [Int]? = nil) -> ExpertPartition {
        let byRate = Array(0..<markers.channels).sorted { markers.counts[$0] != markers.counts[$1] ? markers.counts[$0] > markers.counts[$1] : $0 < $1 }
        let shared = Array((sharedOrder ?? byRate).prefix(sharedChannels))
        let sharedSet = Set(shared)
        let remaining = (0..<markers.channels).filter { !sharedSet.contains($0) }
        let seeds = Array(byRate.filter { !sharedSet.contains($0) }.prefix(experts))
        let cost = remaining.map { c in seeds.map { markers.hammingDistance(c, $0) } }
        let members = regroup(remaining, BalancedAssignment.solve(cost: cost, groups: experts), experts: experts)
        return ExpertPartition(shared: shared, experts: members, representatives: members.map { representative(of: $0, markers: markers) })
    }

    /// Balanced k-means of the routed channels on their activation patterns: CMoE's seeds and first assignment, then
    /// rounds of (centroids as the mean patterns of the groups; the cheapest balanced assignment by L1 distance to the
    /// centroids) until no channel moves or `rounds` rounds. The distance of a 0/1 pattern b to a centroid m is
    /// Σ m + Σ_{t: b_t = 1} (1 − 2 m_t), in integers once scaled by the group size.
    public static func cluster(markers: MarkerMatrix, experts: Int, sharedChannels: Int, sharedOrder: [Int]? = nil, rounds: Int = 20) -> ExpertPartition {
        var partition = cmoe(markers: markers, experts: experts, sharedChannels: sharedChannels, sharedOrder: sharedOrder)
        let routed = partition.experts.flatMap { $0 }.sorted()
        let actives = routed.map { markers.activeTokens($0) }
        let active = Dictionary(uniqueKeysWithValues: zip(routed, actives))
        for _ in 0..<rounds {
            let size = partition.experts[0].count
            var counts = [[Int]](repeating: [Int](repeating: 0, count: markers.tokens), count: experts)   // size · centroid
            for (g, members) in partition.experts.enumerated() {
                for c in members { for t in active[c]! { counts[g][t] += 1 } }
            }
            let totals = counts.map { $0.reduce(0, +) }
            let cost = actives.map { tokens in (0..<experts).map { g in totals[g] + tokens.reduce(0) { $0 + size - 2 * counts[g][$1] } } }
            let next = regroup(routed, BalancedAssignment.solve(cost: cost, groups: experts), experts: experts)
            if next == partition.experts { break }
            partition.experts = next
        }
        partition.representatives = partition.experts.map { representative(of: $0, markers: markers) }
        return partition
    }

    /// A balanced partition of the routed channels' co-activation graph (edge weight: the tokens on which both channels
    /// are active) that keeps co-active channels together: from CMoE's partition, rounds of the cheapest balanced
    /// assignment with a channel's cost in a group the negated co-activation with the group's other members, until no
    /// channel moves or `rounds` rounds.
    public static func cooccurrence(markers: MarkerMatrix, experts: Int, sharedChannels: Int, sharedOrder: [Int]? = nil,
                                    rounds: Int = 20) -> ExpertPartition {
        var partition = cmoe(markers: markers, experts: experts, sharedChannels: sharedChannels, sharedOrder: sharedOrder)
        let routed = partition.experts.flatMap { $0 }.sorted()
        let n = routed.count
        var weight = [Int](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<n {
                let w = markers.coactivations(routed[i], routed[j])
                (weight[i * n + j], weight[j * n + i]) = (w, w)
            }
        }
        let index = Dictionary(uniqueKeysWithValues: routed.enumerated().map { ($1, $0) })
        for _ in 0..<rounds {
            let groups = partition.experts.map { $0.map { index[$0]! } }
            let cost = (0..<n).map { i in groups.map { members in -members.reduce(0) { $0 + ($1 == i ? 0 : weight[i * n + $1]) } } }
            let next = regroup(routed, BalancedAssignment.solve(cost: cost, groups: experts), experts: experts)
            if next == partition.experts { break }
            partition.experts = next
        }
        partition.representatives = partition.experts.map { representative(of: $0, markers: markers) }
        return partition
    }

    /// Channels grouped by their assigned group, each group ascending.
    static func regroup(_ channels: [Int], _ group: [Int], experts: Int) -> [[Int]] {
        var members = [[Int]](repeating: [], count: experts)
        for (i, c) in channels.enumerated() { members[group[i]].append(c) }
        return members
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
