/// The cheapest assignment of `n` items to `k` groups of exactly `n / k` items each, for integer costs: CMoE's
/// balanced clustering step (which solves it as an n × n linear assignment with every group's cost column repeated
/// `n / k` times).
///
/// Solved as a min-cost flow by successive shortest paths: items join one at a time, each along the cheapest chain
/// of moves into a group with room (the item enters group g₀, one of g₀'s members moves to g₁, …), found by
/// Bellman–Ford over the k groups, where moving from group a to b costs the least `cost[j][b] − cost[j][a]` over a's
/// members j. Every augmentation along a shortest path keeps the partial assignment optimal for the items placed so
/// far, so the result has the minimum total cost (several assignments may share it; ties are broken the same way every run). O(n² · k) time.
public enum BalancedAssignment {
    /// The group (0..<k) of each item, every group holding exactly `n / k` items; `cost[i][g]` is item i's cost in
    /// group g. `n` must be a multiple of `k`.
    public static func solve(cost: [[Int]], groups k: Int) -> [Int] {
        let n = cost.count
        precondition(k >= 1 && n % k == 0, "BalancedAssignment: \(n) items do not split into \(k) equal groups")
        precondition(cost.allSatisfy { $0.count == k }, "BalancedAssignment: every item needs a cost per group")
        let capacity = n / k
        var group = [Int](repeating: -1, count: n)
        var members = [[Int]](repeating: [], count: k)
        for item in 0..<n {
            // The cheapest member of each group a to move to each other group b, and what that move costs.
            var moveCost = [[Int]](repeating: [Int](repeating: Int.max, count: k), count: k)
            var moveItem = [[Int]](repeating: [Int](repeating: -1, count: k), count: k)
            for a in 0..<k {
                for j in members[a] {
                    for b in 0..<k where b != a {
                        let delta = cost[j][b] - cost[j][a]
                        if delta < moveCost[a][b] { (moveCost[a][b], moveItem[a][b]) = (delta, j) }
                    }
                }
            }
            // dist[g]: the cheapest chain that places `item` and ends with a move into g (Bellman–Ford over the groups).
            var dist = cost[item]
            var previous = [Int](repeating: -1, count: k)      // the group the last move came from (-1: the new item)
            var mover = [Int](repeating: item, count: k)       // the item moved into g by that last move
            for _ in 0..<k {
                var changed = false
                for a in 0..<k {
                    for b in 0..<k where b != a && moveItem[a][b] >= 0 && dist[a] + moveCost[a][b] < dist[b] {
                        dist[b] = dist[a] + moveCost[a][b]
                        previous[b] = a
                        mover[b] = moveItem[a][b]
                        changed = true
                    }
                }
                if !changed { break }
            }
            var end = -1
            for g in 0..<k where members[g].count < capacity && (end < 0 || dist[g] < dist[end]) { end = g }
            // Walk the chain back: each mover leaves its old group for the next.
            var g = end
            var moves: [(item: Int, to: Int)] = []
            var seen = Set<Int>()
            while g >= 0, seen.insert(g).inserted {
                moves.append((mover[g], g))
                g = previous[g]
            }
            for (j, to) in moves {
                if group[j] >= 0 { members[group[j]].removeAll { $0 == j } }
                group[j] = to
                members[to].append(j)
            }
        }
        return group
    }

    /// Σ cost[i][group[i]].
    public static func totalCost(_ cost: [[Int]], _ group: [Int]) -> Int { zip(cost, group).reduce(0) { $0 + $1.0[$1.1] } }
}
