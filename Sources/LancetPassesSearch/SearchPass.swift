import Foundation
import LancetData
import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Training-free architecture search with weight reformation (Shen et al., "Search for Efficient Large Language
/// Models", NeurIPS 2024): an evolutionary search over every block's KV groups, query heads per group and FFN width
/// (`SearchSpace`; with `depth`, whole sub-layers) under a parameter, FLOP or measured-latency budget
/// (`SearchBudget`), each candidate scored by the calibration NLL of the sliced model with its inherited weights
/// (`CandidateScorer`), the units kept by the paper's importance (`UnitRanking`). The chosen sub-network is then
/// fitted with the recipe's `fit:` — `reform` (the paper's ADMM reformation, `Reformation`), `lstsq` or `regional`
/// — block by block against the dense model, on its masked form, and sliced: the blocks really shrink, differently.
///
/// Data: the first `importance_windows` calibration windows rank the units; the last `score_windows` windows (their
/// first `score_length` tokens), held apart from the ranking, score the candidates; the fit reads every window.
///
/// ```yaml
/// - search: {budget: params, target: 0.8, population: 16, generations: 8}
///   fit: {method: reform, damping: 0.1, steps: 30}
/// - search: {budget: latency, target: 0.75, tokens: 2048}
///   fit: lstsq
/// ```
public struct SearchPass: ModelPass {
    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// `params`, `flops` or `latency`.
        public var budget = "params"
        /// The budget as a share of the dense blocks' cost.
        public var target = 0.8
        /// How far below the target (share of the dense cost) a candidate may fall.
        public var tolerance = 0.005
        /// FFN width step.
        public var ffnStep = 64
        /// The narrowest FFN a block keeps (unless `depth` removes the MLP).
        public var minChannels = 64
        /// Whether whole attention or MLP sub-layers may go.
        public var depth = false
        /// Architectures per generation.
        public var population = 16
        /// Generations after the initial population.
        public var generations = 8
        /// The best architectures so far that breed each generation.
        public var parents = 4
        /// Per-block mutation probability.
        public var mutation = 0.1
        /// Per-block mutation probability of the initial population.
        public var initialMutation = 0.3
        /// Share of each generation made by crossover.
        public var crossover = 0.3
        /// Calibration windows (the first ones) the unit ranking reads.
        public var importanceWindows = 8
        /// Calibration windows (the last ones) candidates are scored on.
        public var scoreWindows = 2
        /// Tokens of each scoring window used.
        public var scoreLength = 512
        /// Prefill tokens FLOPs and latency are counted at.
        public var tokens = 2048
        /// FFN width step of the latency table's grid.
        public var latencyGrid = 256
        /// MiB of prefix states the scorer keeps.
        public var cacheMib = 512

        /// Defaults.
        public init() {}

        enum CodingKeys: String, CodingKey {
            case budget, target, tolerance, depth, population, generations, parents, mutation, crossover, tokens
            case ffnStep = "ffn_step", minChannels = "min_channels", initialMutation = "initial_mutation"
            case importanceWindows = "importance_windows", scoreWindows = "score_windows", scoreLength = "score_length"
            case latencyGrid = "latency_grid", cacheMib = "cache_mib"
        }
    }

    public static let name = "search"
    public static let summary = "Training-free architecture search: evolve per-block KV groups, heads and FFN widths under a params/FLOPs/latency budget, then reform (fit: reform) and slice."
    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "budget": "params, flops (the IR's cost model at `tokens`) or latency (prefill seconds predicted by this machine's latency table)",
        "target": "the budget as a share of the dense blocks' cost, in (0, 1]",
        "tolerance": "how far below the target a candidate may fall (share of the dense cost)",
        "ffn_step": "FFN width step of the search space",
        "min_channels": "the narrowest FFN a block keeps",
        "depth": "whether whole attention or MLP sub-layers may go",
        "population": "architectures per generation",
        "generations": "generations after the initial population",
        "parents": "best architectures so far that breed each generation",
        "mutation": "per-block mutation probability",
        "initial_mutation": "per-block mutation probability of the initial population",
        "crossover": "share of each generation made by crossover",
        "importance_windows": "calibration windows (the first ones) the unit ranking reads",
        "score_windows": "calibration windows (the last ones, held apart from the ranking) candidates are scored on",
        "score_length": "tokens of each scoring window used",
        "tokens": "prefill tokens FLOPs and latency are counted at",
        "latency_grid": "FFN width step of the latency table's grid",
        "cache_mib": "MiB of prefix hidden states the scorer keeps",
    ]
    public static var fitsLocally: Bool { true }
    public static var readsTargets: Bool { true }

    /// The validated options.
    public let options: Options
    /// The budget's measure.
    public let kind: SearchBudget.Kind

    /// A pass; throws `PassOptionError` naming the first bad option.
    public init(options: Options) throws {
        guard let kind = SearchBudget.Kind(rawValue: options.budget) else {
            throw PassOptionError("budget", "must be one of \(SearchBudget.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.budget)'")
        }
        guard options.target > 0, options.target <= 1 else { throw PassOptionError("target", "must be in (0, 1], got \(options.target)") }
        guard options.tolerance > 0, options.tolerance < options.target else {
            throw PassOptionError("tolerance", "must be in (0, target), got \(options.tolerance)")
        }
        for (key, value, least) in [("ffn_step", options.ffnStep, 1), ("min_channels", options.minChannels, 1), ("population", options.population, 2),
                                    ("generations", options.generations, 0), ("parents", options.parents, 1), ("importance_windows", options.importanceWindows, 1),
                                    ("score_windows", options.scoreWindows, 1), ("score_length", options.scoreLength, 2), ("tokens", options.tokens, 1),
                                    ("latency_grid", options.latencyGrid, 1), ("cache_mib", options.cacheMib, 0)] where value < least {
            throw PassOptionError(key, "must be at least \(least), got \(value)")
        }
        for (key, value) in [("mutation", options.mutation), ("initial_mutation", options.initialMutation), ("crossover", options.crossover)]
            where !(value >= 0 && value <= 1) {
            throw PassOptionError(key, "must be in [0, 1], got \(value)")
        }
        self.options = options
        self.kind = kind
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        do { _ = try space(of: model, targets: targets) } catch let e as SearchError { throw PassOptionError("search", e.description) }
    }

    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? {
        options.target < 1 ? "the search chooses every block's heads and FFN width separately" : nil
    }

    /// The search space of `model` under `targets`: a block is searched when its attention and MLP linears are all selected.
    func space(of model: Model, targets: TargetSelection) throws -> SearchSpace {
        try SearchSpace(model: model, searched: { b in
            Set(targets.linears(in: model.blocks[b], index: b).map(\.node.name)).isSuperset(of: BlockSchema.attentionLinears + BlockSchema.mlpLinears)
        }, ffnStep: options.ffnStep, minChannels: options.minChannels, depth: options.depth)
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        var report = PassReport(pass: Self.name)
        let started = Date()
        let space = try space(of: model, targets: context.targets)
        guard context.windowCount > options.scoreWindows else {
            throw PassOptionError("score_windows", "\(options.scoreWindows) of \(context.windowCount) calibration windows leaves none for the ranking and the fit")
        }
        // 1. Rank every block's units on the first windows (the dense model).
        let rankings = try Self.rankings(of: model, windows: 0..<min(options.importanceWindows, context.windowCount - options.scoreWindows), context: context)
        // 2. The budget.
        var table: LatencyTable?
        if kind == .latency {
            table = try latencyTable(for: model, space: space, context: context)
            report.metrics["latency.dense_measured"] = table!.dense
            report.metrics["latency.dense_predicted"] = table!.predict(space.dense)
        }
        let budget = try SearchBudget(kind, target: options.target, tolerance: options.tolerance, space: space, model: model, rankings: rankings,
                                      tokens: options.tokens, latency: table)
        // 3. Search, scoring on the last windows.
        let length = min(options.scoreLength, context.length)
        let scoring = context.calibrationWindows.suffix(options.scoreWindows).map { Array($0.prefix(length)) }
        let scorer = try CandidateScorer(model: model, space: space, rankings: rankings, windows: scoring, capacity: options.cacheMib << 20)
        var settings = EvolutionarySearch.Settings()
        (settings.population, settings.generations, settings.parents) = (options.population, options.generations, options.parents)
        (settings.mutation, settings.initialMutation, settings.crossover) = (options.mutation, options.initialMutation, options.crossover)
        settings.seed = context.seed
        let search = EvolutionarySearch(space: space, budget: budget, settings: settings)
        let outcome = try search.run(score: { try scorer.score($0) }) { g, total in
            context.progress(g, total, "generations")
        }
        for g in outcome.trace {
            context.log(String(format: "search: generation %d: best NLL %.4f (this generation %.4f, mean %.4f, %d scored)", g.generation, g.best,
                               g.generationBest, g.mean, g.scored))
        }
        let searchSeconds = Date().timeIntervalSince(started)
        // 4. The chosen sub-network on its masked form, fitted block by block against the dense model, then sliced.
        let dense = space.dense
        for b in model.blocks.indices { model.blocks[b] = rankings[b].masked(model.blocks[b], outcome.best[b], dense: dense[b]) }
        if context.fit.method != .none {
            let fitted = try context.fitBlocks(&model)
            report.errorAfterCut = fitted.before
            report.errorAfterFit = fitted.after
        }
        for b in model.blocks.indices {
            model.blocks[b] = try rankings[b].sliced(model.blocks[b], outcome.best[b], dense: dense[b])
        }
        // 5. The report: the architecture, the trace, the budget.
        report.metrics["search_seconds"] = searchSeconds
        report.metrics["seconds"] = Date().timeIntervalSince(started)
        report.metrics["score.initial"] = outcome.initialScore
        report.metrics["score.best"] = outcome.score
        report.metrics["candidates"] = Double(outcome.scored.count)
        report.metrics["blocks_run"] = Double(scorer.blocksRun)
        report.metrics["blocks_reused"] = Double(scorer.blocksReused)
        report.metrics["budget.dense"] = budget.dense
        report.metrics["budget.upper"] = budget.upper
        report.metrics["budget.best"] = budget.cost(outcome.best)
        report.metrics["parameters_before"] = Double(space.parameters(dense))
        report.metrics["parameters_after"] = Double(space.parameters(outcome.best))
        if let table { report.metrics["latency.predicted"] = table.predict(outcome.best) }
        for g in outcome.trace {
            report.metrics["trace.\(g.generation).best"] = g.best
            report.metrics["trace.\(g.generation).mean"] = g.mean
        }
        report.notes = outcome.best.enumerated().map { b, c in
            "block \(b): \(c.groups) KV groups × \(c.headsPerGroup) heads, \(c.channels) FFN channels"
        }
        context.log(String(format: "search: best NLL %.4f (uniform start %.4f) after %d candidates, %.0f s; %d blocks run, %d reused from prefixes",
                           outcome.score, outcome.initialScore, outcome.scored.count, searchSeconds, scorer.blocksRun, scorer.blocksReused))
        return report
    }

    /// Every block's unit ranking from its Grams on the calibration windows `windows` of the dense `model`.
    static func rankings(of model: Model, windows: Range<Int>, context: ModelPassContext) throws -> [UnitRanking] {
        var x = try ModelRunner(model: model).embed(Array(context.calibrationWindows[windows].joined()))
        var result: [UnitRanking] = []
        for (b, block) in model.blocks.enumerated() {
            let stats = try context.statistics(of: block, index: b, inputs: x, analyses: UnitRanking.grams.map { InputGram(value: $0) })
            result.append(try UnitRanking(block: block, grams: Dictionary(uniqueKeysWithValues: try UnitRanking.grams.map { ($0, try stats.gram(of: $0)) })))
            try context.advance(&x, through: b..<(b + 1), of: model)
            context.progress(b + 1, model.blocks.count, "ranking")
        }
        return result
    }

    /// This machine's latency table for `model`: the cached one, or measured now and cached.
    func latencyTable(for model: Model, space: SearchSpace, context: ModelPassContext) throws -> LatencyTable {
        if let table = LatencyTable.cached(for: model, tokens: options.tokens), table.widths.count >= 2 { return table }
        guard let first = space.uniformBlock else { throw PassOptionError("budget", "latency needs every block of the same dense shape") }
        context.log("search: measuring this machine's latency table (\(options.tokens) tokens); `lancet bench MODEL --latency-table` caches it ahead")
        let table = try LatencyTable.measure(model, space: first, tokens: options.tokens, gridStep: options.latencyGrid, repetitions: 5) { done, total in
            context.progress(done, total, "latency table")
        }
        let url = try table.save(for: model)
        context.log("search: latency table cached in \(url.path)")
        return table
    }
}
