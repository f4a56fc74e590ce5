import LancetTensor

/// The evolutionary search over a `SearchSpace` under a `SearchBudget` (Shen et al., §3.3): a population
/// initialised from the uniform architecture at the budget and its mutants, then generations of mutants and
/// crossovers of the best architectures found so far (elitist), each scored by a `CandidateScorer`.
///
/// - **mutation**: every searched block, with probability `mutation`, moves one of its genes, drawn evenly: KV groups
///   or heads per group by one, or the FFN width by one to `maxSteps` steps (local moves: uniform redraws would be
///   pulled straight back by the repair, and cut attention far more than a step of the budget is worth);
/// - **crossover**: every block's choice from one of two parents, evenly;
/// - **repair**: a child outside the budget has random blocks' FFN widths stepped down (over budget) or up (under
///   it) until it fits; when no width can move, heads, then groups, do. A child that still does not fit, or
///   that was scored before, is drawn again (a bounded number of times);
/// - **selection**: the `parents` best architectures scored so far.
///
/// Everything random comes from one seeded generator: the same seed gives the same search.
public struct EvolutionarySearch {
    /// Search settings.
    public struct Settings: Sendable {
        public var population = 16
        public var generations = 8
        public var parents = 4
        public var mutation = 0.1
        public var initialMutation = 0.3
        public var crossover = 0.3
        public var maxSteps = 4
        public var seed: UInt64 = 0
        /// Defaults.
        public init() {}
    }

    /// One generation's outcome.
    public struct Generation: Codable, Sendable, Equatable {
        public var generation: Int
        /// Best score found so far, and this generation's best and mean.
        public var best: Double
        public var generationBest: Double
        public var mean: Double
        /// Architectures scored in this generation.
        public var scored: Int
        /// Cost of the best architecture so far.
        public var bestCost: Double
    }

    /// The search's outcome.
    public struct Outcome {
        /// The best architecture and its score.
        public var best: Architecture
        public var score: Double
        /// The starting (uniform) architecture and its score.
        public var initial: Architecture
        public var initialScore: Double
        /// Per generation (0: the initial population).
        public var trace: [Generation]
        /// Every architecture scored, in order.
        public var scored: [Architecture]
    }

    public let space: SearchSpace
    public let budget: SearchBudget
    public let settings: Settings

    /// A search of `space` under `budget`.
    public init(space: SearchSpace, budget: SearchBudget, settings: Settings) {
        self.space = space
        self.budget = budget
        self.settings = settings
    }

    /// The uniform architecture at the budget: from the dense one, the widest searched FFN (the last such block on
    /// ties) steps down until the cost is within the budget; if widths alone cannot get there, heads per group, then
    /// groups, go the same way. Throws when even the smallest architecture costs too much.
    public func uniform() throws -> Architecture {
        var a = space.dense
        let searched = space.blocks.indices.filter { space.blocks[$0].searched }
        while budget.cost(a) > budget.upper {
            let movable = searched.filter { shrinkWidth(&a, $0, dryRun: true) }
            if let b = movable.max(by: { (a[$0].channels, $0) < (a[$1].channels, $1) }) {
                _ = shrinkWidth(&a, b, dryRun: false)
                continue
            }
            let heads = searched.filter { a[$0].headsPerGroup > 1 }
            if let b = heads.max(by: { (a[$0].heads, $0) < (a[$1].heads, $1) }) { a[b].headsPerGroup -= 1; continue }
            let groups = searched.filter { a[$0].groups > max(space.blocks[$0].minGroups, 1) }
            if let b = groups.max(by: { (a[$0].groups, $0) < (a[$1].groups, $1) }) { a[b].groups -= 1; continue }
            throw SearchError("no architecture of the search space meets the \(budget.kind.rawValue) budget (\(budget.upper) of \(budget.dense))")
        }
        return a
    }

    /// Runs the search, scoring with `score`; `progress(generation, generations)` after each generation.
    public func run(score: (Architecture) throws -> Double, progress: (Int, Int) -> Void = { _, _ in }) throws -> Outcome {
        var rng = SeededGenerator(seed: settings.seed)
        let start = try uniform()
        var scores: [Architecture: Double] = [:]
        var order: [Architecture] = []
        var trace: [Generation] = []
        // Everything scored so far, best first (ties: the one scored first).
        func ranked() -> [Architecture] {
            order.indices.sorted { (scores[order[$0]]!, $0) < (scores[order[$1]]!, $1) }.map { order[$0] }
        }
        func evaluate(_ batch: [Architecture], generation: Int) throws {
            var values: [Double] = []
            for a in batch {
                let s = try score(a)
                scores[a] = s
                order.append(a)
                values.append(s)
            }
            let best = ranked()[0]
            trace.append(Generation(generation: generation, best: scores[best]!, generationBest: values.min() ?? .nan,
                                    mean: values.reduce(0, +) / Double(max(values.count, 1)), scored: values.count, bestCost: budget.cost(best)))
        }
        // Generation 0: the uniform architecture and its mutants.
        var first = [start]
        var seen: Set<Architecture> = [start]
        for _ in 1..<max(settings.population, 1) {
            if let child = draw(&rng, seen: seen, { mutate(start, rate: settings.initialMutation, &$0) }) {
                first.append(child)
                seen.insert(child)
            }
        }
        try evaluate(first, generation: 0)
        progress(0, settings.generations)
        for generation in stride(from: 1, through: settings.generations, by: 1) {
            let parents = Array(ranked().prefix(settings.parents))
            let crossovers = parents.count > 1 ? Int((settings.crossover * Double(settings.population)).rounded()) : 0
            var children: [Architecture] = []
            for i in 0..<settings.population {
                let child = draw(&rng, seen: seen) { r -> Architecture in
                    let p = parents[r.nextIndex(below: parents.count)]
                    if i < crossovers {
                        var q = parents[r.nextIndex(below: parents.count)]
                        while q == p { q = parents[r.nextIndex(below: parents.count)] }
                        return cross(p, q, &r)
                    }
                    return mutate(p, rate: settings.mutation, &r)
                }
                if let child {
                    children.append(child)
                    seen.insert(child)
                }
            }
            try evaluate(children, generation: generation)
            progress(generation, settings.generations)
        }
        let best = ranked()[0]
        return Outcome(best: best, score: scores[best]!, initial: start, initialScore: scores[start]!, trace: trace, scored: order)
    }

    /// A new architecture from `make`, repaired into the budget, not in `seen`; nil after 50 failed draws.
    func draw(_ rng: inout SeededGenerator, seen: Set<Architecture>, _ make: (inout SeededGenerator) -> Architecture) -> Architecture? {
        for _ in 0..<50 {
            var a = make(&rng)
            guard repair(&a, &rng), !seen.contains(a) else { continue }
            return a
        }
        return nil
    }

    /// `parent` with every searched block mutated with probability `rate`.
    func mutate(_ parent: Architecture, rate: Double, _ rng: inout SeededGenerator) -> Architecture {
        var a = parent
        for (b, s) in space.blocks.enumerated() where s.searched && rng.nextDouble() < rate {
            var (groups, heads) = (a[b].groups, max(a[b].headsPerGroup, 1))
            var w = s.widths.firstIndex(of: a[b].channels) ?? s.widths.count - 1
            switch rng.nextIndex(below: 3) {
            case 0: groups = min(max(groups + (rng.nextIndex(below: 2) == 0 ? -1 : 1), s.minGroups), s.groups)
            case 1: heads = min(max(heads + (rng.nextIndex(below: 2) == 0 ? -1 : 1), 1), s.headsPerGroup)
            default:
                let step = 1 + rng.nextIndex(below: max(settings.maxSteps, 1))
                w = rng.nextIndex(below: 2) == 0 ? max(0, w - step) : min(s.widths.count - 1, w + step)
            }
            a[b] = BlockChoice(groups: groups, headsPerGroup: heads, channels: s.widths[w])
        }
        return a
    }

    /// Every block's choice from `p` or `q`, evenly.
    func cross(_ p: Architecture, _ q: Architecture, _ rng: inout SeededGenerator) -> Architecture {
        zip(p, q).map { rng.nextIndex(below: 2) == 0 ? $0 : $1 }
    }

    /// Steps random searched blocks' widths (then heads, then groups) until `a` meets the budget; false if it cannot.
    func repair(_ a: inout Architecture, _ rng: inout SeededGenerator) -> Bool {
        let searched = space.blocks.indices.filter { space.blocks[$0].searched }
        for _ in 0..<10_000 {
            let c = budget.cost(a)
            if budget.admits(a) { return true }
            let over = c > budget.upper
            let widths = searched.filter { over ? shrinkWidth(&a, $0, dryRun: true) : growWidth(&a, $0, dryRun: true) }
            if !widths.isEmpty {
                let b = widths[rng.nextIndex(below: widths.count)]
                _ = over ? shrinkWidth(&a, b, dryRun: false) : growWidth(&a, b, dryRun: false)
                continue
            }
            let heads = searched.filter { over ? a[$0].headsPerGroup > 1 : (a[$0].groups > 0 && a[$0].headsPerGroup < space.blocks[$0].headsPerGroup) }
            if !heads.isEmpty { a[heads[rng.nextIndex(below: heads.count)]].headsPerGroup += over ? -1 : 1; continue }
            let groups = searched.filter { over ? a[$0].groups > max(space.blocks[$0].minGroups, 1) : a[$0].groups < space.blocks[$0].groups }
            if !groups.isEmpty {
                let b = groups[rng.nextIndex(below: groups.count)]
                a[b] = BlockChoice(groups: a[b].groups + (over ? -1 : 1), headsPerGroup: max(a[b].headsPerGroup, 1), channels: a[b].channels)
                continue
            }
            return false
        }
        return false
    }

    func shrinkWidth(_ a: inout Architecture, _ b: Int, dryRun: Bool) -> Bool {
        let widths = space.blocks[b].widths
        guard let i = widths.firstIndex(of: a[b].channels), i > 0 else { return false }
        if !dryRun { a[b].channels = widths[i - 1] }
        return true
    }

    func growWidth(_ a: inout Architecture, _ b: Int, dryRun: Bool) -> Bool {
        let widths = space.blocks[b].widths
        guard let i = widths.firstIndex(of: a[b].channels), i + 1 < widths.count else { return false }
        if !dryRun { a[b].channels = widths[i + 1] }
        return true
    }
}
