import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Input-dependent FFN pruning (IFPruning, arXiv 2501.02086, fitted on calibration data only): every targeted
/// block's SwiGLU MLP becomes a `dynamic-ffn` op that keeps, for each prompt, the `keep` share of its channels the
/// predictor scores highest, and runs only those for every token after the prompt.
///
/// The predictor reads the prompt's hidden states at the block's own FFN input, through the FFN: each channel's
/// contribution over the first `prompt_tokens` tokens (`ChannelContribution`). IFPruning reads one early hidden
/// state and predicts every block's mask with a network trained jointly with the model; without that training a
/// per-block reading is what calibration data can fit (32 prompts cannot fit a map from a 576-wide state to 30 × 1,536
/// scores), and the prefill computes it anyway. `linear` and `mlp` predictors are fitted per block on the calibration
/// windows, each split into its prompt (its first `prompt_tokens`) and the rest, to predict the channels'
/// contributions over the rest; `prompt` uses the prompt's contributions as they are; `oracle` chooses from the rest
/// itself (for evaluation only). No gradient through the model is needed. With a `fit:` after the pass, the tokens
/// after the prompt get a down projection of their own (starting as the dense one), and the fit refits it (`lstsq`:
/// the op is a `LinearReadoutOp`, each window masked by its own choice; the prompt's rows refit the dense one against
/// itself) or the FFN (`regional`).
///
/// ```yaml
/// - dynamic-ffn: {keep: 0.5, prompt_tokens: 512, predictor: linear}
///   targets: ["blocks.*.mlp.*"]
/// ```
public struct DynamicFFNPass: BlockPass {
    public static let name = "dynamic-ffn"
    public static let summary = "Choose each prompt's FFN channels with a predictor fitted on calibration prompts; decode runs only those (IFPruning)."
    public static let needsCalibration = true
    public static let readsDenseOutputs = false

    /// Options of `dynamic-ffn`.
    public struct Options: Codable, Sendable {
        /// Share of each FFN's channels active after the prompt.
        public var keep = 0.5
        /// Tokens of the prompt the predictor reads.
        public var prompt_tokens = 512
        /// `prompt`, `linear`, `mlp` or `oracle`.
        public var predictor = "linear"
        /// Hidden units of the `mlp` predictor.
        public var hidden = 16
        /// Shrinkage of the `linear` predictor's slopes.
        public var ridge = 0.1
        /// Adam steps of the `mlp` predictor.
        public var steps = 400
        /// Calibration windows the predictor learns from (default: all).
        public var windows: Int? = nil
        /// `uniform` or `error`.
        public var allocation = "uniform"
        /// Whether dropped channels read their prompt mean instead of zero.
        public var impute = false
        /// Tokens at the start of each prompt its statistics leave out.
        public var sink_tokens = 0
        /// Ridge of each prompt's own refit of its kept channels' down columns at prefill (0: none).
        public var repair = 0.0
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp: [String: String] = [
        "keep": "share of each FFN's channels active for the tokens after the prompt, in (0, 1]",
        "prompt_tokens": "tokens of the prompt the predictor reads (the full FFN runs on them); a calibration window's first prompt_tokens are its prompt",
        "predictor": "prompt (the prompt's own channel contributions), linear (a fitted line per channel), mlp (a fitted network per block, shared by its channels) or oracle (the continuation's own contributions: evaluation only)",
        "hidden": "hidden units of the mlp predictor",
        "ridge": "shrinkage of the linear predictor's slopes toward 0 (slope = cov / (var · (1 + ridge)))",
        "steps": "Adam steps fitting the mlp predictor",
        "windows": "calibration windows the predictor is fitted on (default: all)",
        "repair": "ridge (relative to the Gram's mean diagonal) of each prompt's own least-squares refit, at prefill, of its kept channels' down columns against the full FFN's output on the prompt, toward the after-prompt down projection; 0 turns it off",
        "sink_tokens": "tokens at the start of each prompt left out of the statistics the predictor reads (the first position's attention-sink activations say nothing about the text)",
        "impute": "true: after the prompt, a dropped channel contributes its mean activation over the prompt (a bias made once per prompt) instead of nothing",
        "allocation": "uniform (every block keeps the same share) or error (the same total, spread over the blocks to least estimated error: each block's dropped contribution energy over its output's energy on calibration text, prompt-chosen channels; costs one calibration forward)",
    ]

    public let keep: Double
    public let promptTokens: Int
    public let predictor: ChannelPredictor
    public let ridge: Double
    public let steps: Int
    public let windows: Int?
    public let allocation: Allocation
    public let impute: Bool
    public let sinkTokens: Int
    public let repairRidge: Double

    /// How the active channels are spread over the blocks.
    public enum Allocation: String, Sendable, CaseIterable { case uniform, error }

    public init(options: Options) throws {
        guard options.keep > 0 && options.keep <= 1 else { throw PassOptionError("keep", "must be in (0, 1], got \(options.keep)") }
        guard options.prompt_tokens >= 1 else { throw PassOptionError("prompt_tokens", "must be at least 1, got \(options.prompt_tokens)") }
        guard options.hidden >= 1 else { throw PassOptionError("hidden", "must be at least 1, got \(options.hidden)") }
        guard let predictor = ChannelPredictor(name: options.predictor, hidden: options.hidden) else {
            throw PassOptionError("predictor", "must be one of \(ChannelPredictor.names.joined(separator: ", ")), got '\(options.predictor)'")
        }
        guard options.ridge >= 0 else { throw PassOptionError("ridge", "must be at least 0, got \(options.ridge)") }
        guard options.steps >= 0 else { throw PassOptionError("steps", "must be at least 0, got \(options.steps)") }
        if let w = options.windows, w < 1 { throw PassOptionError("windows", "must be at least 1, got \(w)") }
        guard let allocation = Allocation(rawValue: options.allocation) else {
            throw PassOptionError("allocation", "must be one of \(Allocation.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.allocation)'")
        }
        self.allocation = allocation
        impute = options.impute
        guard options.sink_tokens >= 0 && options.sink_tokens < options.prompt_tokens else {
            throw PassOptionError("sink_tokens", "must be in 0..<prompt_tokens (\(options.prompt_tokens)), got \(options.sink_tokens)")
        }
        sinkTokens = options.sink_tokens
        guard options.repair >= 0 else { throw PassOptionError("repair", "must be at least 0, got \(options.repair)") }
        repairRidge = options.repair
        (keep, promptTokens, self.predictor, ridge, steps, windows) = (options.keep, options.prompt_tokens, predictor, options.ridge, options.steps, options.windows)
    }

    /// The op's node name and parameter prefix.
    public static let node = "mlp.dynamic"

    /// Whether `block` has a dense SwiGLU MLP whose three linears the targets select.
    func converts(_ block: Block, context: BlockPassContext) -> Bool { context.selectsWholeMLP(block) }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        var report = PassReport(pass: Self.name, block: context.blockIndex)
        guard converts(block, context: context) else {
            report.notes.append("no dense SwiGLU MLP selected by the targets: left as it is")
            return report
        }
        let gate = block.parameters["mlp.gate.weight"]!, up = block.parameters["mlp.up.weight"]!, down = block.parameters["mlp.down.weight"]!
        let width = gate.shape[0]
        let planned = context.modelFacts[Self.keepFact].flatMap { context.blockIndex < $0.count && $0[context.blockIndex] >= 1 ? Int($0[context.blockIndex]) : nil }
        let kept = max(1, min(width, planned ?? Int((keep * Double(width)).rounded())))
        // A fit after the pass gets a down projection of its own for the masked tokens after the prompt.
        let op = DynamicFFNOp(prefix: Self.node, keep: kept, promptTokens: promptTokens, predictor: predictor,
                              afterDown: context.fit.method != .none, impute: impute, sinkTokens: sinkTokens, repair: repairRidge)
        let dense = block
        var parameters = [op.ffnNames.gate: gate, op.ffnNames.up: up, op.ffnNames.down: down]
        if op.afterDown { parameters[op.afterDownName] = down }
        block = try LlamaBlock.replacingMLP(of: block, with: op, named: Self.node, parameters: parameters)

        var metrics: [String: Double] = ["width": Double(width), "keep": Double(kept), "prompt_tokens": Double(promptTokens)]
        if fitsPredictor {
            let samples = try predictorSamples(dense, down: down, context: context)
            let outcome = samples.fit(predictor, prefix: Self.node, ridge: ridge, steps: steps,
                                      seed: context.seed ^ UInt64(context.blockIndex &* 0x9E37_79B9))
            block.parameters.merge(outcome.parameters) { $1 }
            metrics["predictor_parameters"] = Double(outcome.parameters.values.reduce(0) { $0 + $1.count })
            metrics["predictor_loss_before"] = outcome.lossBefore
            metrics["predictor_loss_after"] = outcome.lossAfter
            metrics["predictor_prompts"] = Double(samples.features.count)
            let captured = try capturedShare(op, samples: samples, parameters: block)
            metrics["captured_share"] = captured.predicted
            metrics["captured_share_prompt"] = captured.prompt
            report.notes.append("\(predictor.name) predictor fitted on \(samples.features.count) prompts: loss \(fmt(outcome.lossBefore)) → \(fmt(outcome.lossAfter)); keeps \(fmt(100 * captured.predicted))% of the oracle's contribution energy (prompt alone \(fmt(100 * captured.prompt))%)")
        } else {
            metrics["predictor_parameters"] = 0
        }
        report.metrics = metrics
        report.notes.insert("\(kept) of \(width) FFN channels per prompt (first \(promptTokens) tokens), \(predictor.name) predictor", at: 0)
        return report
    }

    private func fmt(_ v: Double) -> String { String(format: "%.3g", v) }

    /// Whether the predictor learns from calibration samples.
    var fitsPredictor: Bool {
        if case .mlp = predictor { return true }
        return predictor == .linear
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        // Too long a prompt is refused by `apply`, naming the option.
        guard converts(block, context: context), fitsPredictor, promptTokens < context.calibration.length,
              let samples = PromptContinuationSamples(block: block, length: context.calibration.length, promptTokens: promptTokens, sinkTokens: sinkTokens) else { return [] }
        return [samples]
    }

    /// Each calibration window's prompt features and continuation targets (contributions: RMS times the down column's norm).
    func predictorSamples(_ block: Block, down: Tensor, context: BlockPassContext) throws -> ChannelPredictorFit {
        let calibration = context.calibration
        guard promptTokens < calibration.length else {
            throw PassOptionError("prompt_tokens", "must be shorter than the calibration windows (\(calibration.length) tokens) to leave a continuation to learn from, got \(promptTokens)")
        }
        guard let analysis = PromptContinuationSamples(block: block, length: calibration.length, promptTokens: promptTokens, sinkTokens: sinkTokens) else {
            throw PassOptionError("predictor", "block \(context.blockIndex) has no SwiGLU MLP to learn from")
        }
        let values = try context.statistics.value(of: analysis)
        let count = min(windows ?? values.prompt.count, values.prompt.count)
        guard count > 0 else { throw PassOptionError("predictor", "the \(predictor.name) predictor needs calibration windows; the pass got none") }
        let norms = ChannelContribution.columnNorms(down)
        var samples = ChannelPredictorFit()
        for n in 0..<count {
            let c = values.contributions(window: n, columnNorms: norms)
            samples.add(features: c.prompt, targets: c.rest)
        }
        return samples
    }

    /// The model fact holding each block's planned active channels (`allocation: error`).
    static let keepFact = "dynamic-ffn.keep"

    /// With `allocation: error`, each block's active channels: the total `keep` gives, spread in steps of 32 channels
    /// (from a floor of half the uniform share) to the blocks where a step lowers the estimated error most. A block's
    /// estimated error at k channels is the continuation's contribution energy of the channels outside the prompt's k
    /// largest, over the block output's energy, averaged over the calibration windows of a dense sweep.
    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] {
        guard allocation == .error else { return [:] }
        guard promptTokens < context.windowLength else {
            throw PassOptionError("prompt_tokens", "must be shorter than the calibration windows (\(context.windowLength) tokens), got \(promptTokens)")
        }
        let step = 32
        var curves: [Int: [Double]] = [:], widths: [Int: Int] = [:]
        try context.denseSweep(requests: { i, block in
            guard context.targets.selectsWholeMLP(block, index: i),
                  let a = PromptContinuationSamples(block: block, length: context.windowLength, promptTokens: promptTokens, sinkTokens: sinkTokens) else { return [] }
            return [a]
        }, visit: { i, block, statistics in
            guard let analysis = PromptContinuationSamples(block: block, length: context.windowLength, promptTokens: promptTokens, sinkTokens: sinkTokens),
                  statistics.holds(analysis), let down = block.parameters["mlp.down.weight"] else { return }
            let v = try statistics.value(of: analysis)
            let norms = ChannelContribution.columnNorms(down), width = norms.count
            var curve = [Double](repeating: 0, count: width / step + 1)
            for n in v.prompt.indices {
                // y: the squared contributions, multiplied in this order so that the allocation stays as measured.
                let f = v.contributions(window: n, columnNorms: norms).prompt, y = zip(v.rest[n], norms).map { $0 * $1 * $0 * $1 }
                let order = f.indices.sorted { f[$0] != f[$1] ? f[$0] > f[$1] : $0 < $1 }
                let total = y.reduce(0, +)
                var kept = 0.0
                for (j, c) in order.enumerated() {
                    if j % step == 0 { curve[j / step] += (total - kept) / max(v.outputEnergy[n], 1e-30) / Double(v.prompt.count) }
                    kept += y[c]
                }
            }
            curves[i] = curve
            widths[i] = width
        })
        guard !curves.isEmpty else { return [:] }
        var steps = curves.mapValues { _ in 0 }
        for (i, w) in widths { steps[i] = Int((keep / 2 * Double(w) / Double(step)).rounded(.down)) }
        let target = widths.values.reduce(0) { $0 + Int((keep * Double($1)).rounded()) }
        var used = steps.reduce(0) { $0 + $1.value * step }
        while used + step <= target {
            let candidates = steps.filter { ($0.value + 1) * step <= widths[$0.key]! }
            guard let best = candidates.max(by: { a, b in
                let ga = curves[a.key]![a.value] - curves[a.key]![a.value + 1], gb = curves[b.key]![b.value] - curves[b.key]![b.value + 1]
                return ga != gb ? ga < gb : a.key > b.key
            }) else { break }
            steps[best.key]! += 1
            used += step
        }
        let blocks = model.blocks.count
        let keeps = (0..<blocks).map { i in steps[i].map { Double($0 * step) } ?? -1 }
        context.log("dynamic-ffn allocation (channels per block): " + keeps.map { String(Int($0)) }.joined(separator: " "))
        return [Self.keepFact: keeps]
    }

    /// The share of the continuation's contribution energy (Σ y_c² over kept channels) the fitted predictor's choice
    /// keeps, relative to the oracle's choice, averaged over the calibration prompts; and the same for the `prompt`
    /// predictor.
    func capturedShare(_ op: DynamicFFNOp, samples: ChannelPredictorFit, parameters: ParameterLookup) throws -> (predicted: Double, prompt: Double) {
        var predicted = 0.0, prompt = 0.0
        for (f, y) in zip(samples.features, samples.targets) {
            func energy(_ channels: [Int]) -> Double { channels.reduce(0) { $0 + y[$1] * y[$1] } }
            let best = energy(ChannelContribution.top(y, keep: op.keep))
            guard best > 0 else { continue }
            predicted += energy(ChannelContribution.top(try predictor.scores(f, prefix: op.prefix, parameters: parameters), keep: op.keep)) / best
            prompt += energy(ChannelContribution.top(f, keep: op.keep)) / best
        }
        let n = Double(max(samples.features.count, 1))
        return (predicted / n, prompt / n)
    }
}
