import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Wanda++ (Yang et al. 2025, "Wanda++: Pruning Large Language Models via Regional Gradients",
/// arXiv 2503.04992): Wanda's score sharpened with the block's regional gradient, alternated with a few
/// steps of regional optimisation (RO) that pull the pruned block's output back to the dense block's.
///
/// Regional gradient score, per weight of a targeted linear:
///
///     S_ij = (α · G_ij + ‖X_j‖₂) · |W_ij|
///
/// with `G` the root mean square over calibration windows of ∂‖block(X_w)‖₂/∂W on the dense block (the
/// `RegionalGradient` analysis) and `‖X_j‖₂` the input-channel norm over all calibration tokens. The
/// block is then cut as the paper's algorithm does:
///
///     repeat ro_iterations (K) times:
///         prune every targeted linear by S (current weights and input norms)
///         RO: one RMSprop step per window on ro_samples random windows, loss
///             Σ‖block(X_w) − Y_dense,w‖² against the dense teacher, on the targeted linears' weights
///     prune by S once more
///
/// The paper uses K = 5, 32 windows per round and learning rate 3e-7 on 7B-class models in half
/// precision. Lancet's defaults (K = 3, 8 windows, 1e-3) were chosen on SmolLM2-135M by the block-output
/// error on the calibration windows (at 3e-7 RMSprop moves each weight by ~1e-5 in total, which leaves
/// the block error of a 135M model unchanged); the paper's settings are one option line away.
///
/// Cost. The pipeline already runs two calibration forwards per block (the dense block's statistics and outputs,
/// then the cut block's outputs for the next block); a backward costs about two forwards. With every window in
/// every part (the default), the regional gradient (a forward and a backward of each window) adds three forwards
/// and RO, its re-measured norms and the held check about four more: ~8.9 forwards in all. Two options trade
/// quality for time: `rg_samples` averages the regional gradient over that many windows drawn per block, and
/// `sample_tokens` lets RO's steps, the re-measured norms and the held check read only the first tokens of their
/// windows (exact for a causal block: a window's first outputs depend only on its first tokens).
/// `Docs/Performance.md` gives what they cost in perplexity on SmolLM2.
///
/// In RO every weight of the targeted linears moves, pruned ones included (`ro_regrow: true`, as in the
/// paper, so the next scoring may choose a different mask); the final prune leaves the pattern exact and
/// the pruned weights zero. With `ro_regrow: false` pruned weights stay zero during RO, so the mask is the
/// first one. After the final prune the block is compared, on held calibration windows, with the block
/// pruned by the first scores alone. When RO made the output error worse (an RMSprop first step is ten
/// times the learning rate and can overshoot on a block with extreme activations, such as block 0 of
/// SmolLM2), RO is run again from the start at a tenth of the rate (`ro_retries` times, default once); when
/// no rate helps, the pass keeps the score-only result and reports `ro_reverted`. Input norms are
/// re-measured on the current block after each RO round, over that round's
/// windows (the first scoring uses every calibration token). The recipe's `fit:` still runs after the pass (default none).
///
/// ```yaml
/// - wanda++: {sparsity: 0.5, alpha: 100, ro_iterations: 3, ro_samples: 8, ro_learning_rate: 1.0e-3}
/// - wanda++: {sparsity: 0.5, rg_samples: 8}        # ~7× a calibration forward instead of ~9×, at a cost in quality
/// - wanda++: {pattern: "2:4"}
///   targets: ["blocks.*.attn.*", "blocks.*.mlp.*"]
/// ```
public struct WandaPlusPlusPass: BlockPass {
    public static let name = "wanda++"
    public static let summary = "Prune by regional-gradient scores (α·G + ‖X‖)·|W| alternated with regional optimisation (Wanda++)."
    /// Reads calibration activations (scores, statistics), so the run needs calibration data.
    public static let needsCalibration = true

    /// Options of `wanda++`.
    public struct Options: Codable, Sendable {
        /// Fraction of weights removed (unstructured).
        public var sparsity = 0.5
        /// `unstructured` or `N:M` (e.g. `2:4`).
        public var pattern = "unstructured"
        /// `row` (compare within each output row) or `layer`.
        public var scope = "row"
        /// Weight of the regional gradient in the score.
        public var alpha = 100.0
        /// Prune → RO rounds before the final prune (0: RGS pruning alone).
        public var ro_iterations = 3
        /// Calibration windows drawn per RO round (one step per window).
        public var ro_samples = 8
        /// RMSprop learning rate of RO.
        public var ro_learning_rate = 1e-3
        /// Whether RO may move pruned weights (the paper's choice); false keeps them at zero.
        public var ro_regrow = true
        /// Retries of RO at a tenth of the learning rate when it left the block worse than the score alone.
        public var ro_retries = 1
        /// Calibration windows the regional gradient averages over, drawn at random per block (0: every window).
        public var rg_samples = 0
        /// Tokens of each window that RO's steps, the re-measured input norms and the held check read: the window's
        /// first tokens (0: the whole window).
        public var sample_tokens = 0
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "sparsity": "fraction of weights removed in [0, 1) (unstructured pattern)",
        "pattern": "unstructured, or N:M to keep N of every M consecutive inputs (2:4, 4:8)",
        "scope": "row: prune each output row to the sparsity; layer: the whole matrix",
        "alpha": "weight α of the regional gradient G in the score (α·G + ‖X‖)·|W|",
        "ro_iterations": "rounds of (prune, regional optimisation) before the final prune; 0 prunes by the score alone",
        "ro_samples": "calibration windows per regional-optimisation round, one RMSprop step each",
        "ro_learning_rate": "RMSprop learning rate of the regional optimisation",
        "ro_regrow": "true: RO moves pruned weights too and the next round may re-choose the mask; false: they stay zero",
        "ro_retries": "when RO leaves the block worse than the score alone (held windows), retry it at a tenth of the rate this many times",
        "rg_samples": "calibration windows (drawn per block) the regional gradient averages over; 0: every window",
        "sample_tokens": "first tokens of each window read by RO steps, re-measured norms and the held check; 0: whole windows",
    ]

    /// The pruning pattern.
    public let pattern: SparsityPattern
    /// The options as decoded.
    public let options: Options

    public init(options: Options) throws {
        pattern = try SparsityPattern.parse(pattern: options.pattern, sparsity: options.sparsity, scope: options.scope)
        guard options.alpha >= 0 else { throw PassOptionError("alpha", "must be non-negative, got \(options.alpha)") }
        guard options.ro_iterations >= 0 else { throw PassOptionError("ro_iterations", "must be non-negative, got \(options.ro_iterations)") }
        guard options.ro_samples >= 1 else { throw PassOptionError("ro_samples", "must be at least 1, got \(options.ro_samples)") }
        guard options.rg_samples >= 0 else { throw PassOptionError("rg_samples", "must be non-negative, got \(options.rg_samples)") }
        guard options.sample_tokens >= 0 else {
            throw PassOptionError("sample_tokens", "must be non-negative, got \(options.sample_tokens)")
        }
        guard options.ro_retries >= 0 else { throw PassOptionError("ro_retries", "must be non-negative, got \(options.ro_retries)") }
        guard options.ro_learning_rate >= 0 else {
            throw PassOptionError("ro_learning_rate", "must be non-negative, got \(options.ro_learning_rate)")
        }
        self.options = options
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        try pattern.check(model: model, targets: targets)
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        context.linears(in: block).map { InputSquares(value: $0.node.inputs[0]) } + [regionalGradient(context)]
    }

    /// The regional-gradient analysis of block `context.blockIndex`: `rg_samples` windows drawn by the run's seed.
    func regionalGradient(_ context: BlockPassContext) -> RegionalGradient {
        guard options.rg_samples > 0 else { return RegionalGradient() }
        return RegionalGradient(samples: options.rg_samples, seed: context.seed ^ (UInt64(context.blockIndex + 1) &* 0xD1B5_4A32_D192_ED03))
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        let linears = context.linears(in: block).map { (name: $0.op.weight!, input: $0.node.inputs[0]) }
        let earlier = block.masks                                    // masks of cuts before this pass stay
        var gradients: [String: Tensor] = [:]
        var norms: [String: [Float]] = [:]
        let gradientAnalysis = regionalGradient(context)
        for l in linears {
            gradients[l.name] = try context.statistics.regionalGradient(l.name, analysis: gradientAnalysis)
            if norms[l.input] == nil { norms[l.input] = try context.statistics.inputNorms(of: l.input) }
        }
        let alpha = Float(options.alpha)
        func pruneAll(_ b: inout Block, norms n: [String: [Float]]) {
            for l in linears {
                let scores = WandaScore.regionalGradientScores(weight: b.parameters[l.name]!, gradient: gradients[l.name]!,
                                                               inputNorms: n[l.input]!, alpha: alpha)
                _ = prune(&b, weight: l.name, scores: scores, pattern: pattern, previous: earlier[l.name])
            }
        }

        var metrics: [String: Double] = [:]
        let full = context.calibration
        let calibration = options.sample_tokens > 0 ? full.prefixes(tokens: options.sample_tokens) : full
        let perCall = Self.windowsPerCall * full.length / calibration.length
        var generator = SeededGenerator(seed: context.seed ^ (UInt64(context.blockIndex + 1) &* 0x9E37_79B9_7F4A_7C15))
        /// A metric name for RO attempt `attempt` (0: the first, at `ro_learning_rate`).
        func attemptMetric(_ name: String, _ attempt: Int) -> String { attempt == 0 ? "ro_\(name)" : "ro_retry\(attempt)_\(name)" }
        /// K rounds of (prune by the current scores, RO) from the pass's input block, then the final prune.
        func regionalRounds(learningRate: Double, attempt: Int) throws -> Block {
            var b = block
            var n = norms
            var optimizer = RegionalOptimizer.rmsprop(learningRate: learningRate)
            for k in 0..<options.ro_iterations {
                pruneAll(&b, norms: n)
                let windows = generator.sampleIndices(min(options.ro_samples, calibration.windows), from: calibration.windows)
                let loss = try RegionalFit.optimize(&b, index: context.blockIndex, calibration: calibration, batches: windows.map { [$0] },
                                                    parameters: linears.map(\.name), keepMasked: !options.ro_regrow, lossScale: .sum,
                                                    optimizer: &optimizer)
                metrics[attemptMetric("error.\(k)", attempt)] = loss
                // Norms over this round's windows (their sampled tokens), rescaled to all calibration tokens so that
                // α·G + ‖X‖ keeps its balance.
                let scale = Float((Double(full.windows * full.length) / Double(windows.count * calibration.length)).squareRoot())
                n = try Self.inputNorms(of: b, index: context.blockIndex, calibration: calibration, windows: windows,
                                        values: Set(linears.map(\.input)), windowsPerCall: perCall).mapValues { $0.map { $0 * scale } }
            }
            pruneAll(&b, norms: n)
            return b
        }

        var scoreOnly = block                                        // pruned by the first scores alone
        pruneAll(&scoreOnly, norms: norms)
        var result = scoreOnly
        if options.ro_iterations > 0 {
            // RO must not leave the block worse than scoring alone. RMSprop's first step is ten times the learning
            // rate and overshoots on a block with extreme activations (block 0 of SmolLM2), so the result of RO is
            // compared with the score-only block on held calibration windows; when worse, RO is retried from the
            // start at a tenth of the rate (up to ro_retries times), and the score-only block is kept when no rate
            // helps.
            let held = generator.sampleIndices(min(options.ro_samples, calibration.windows), from: calibration.windows)
            let heldInputs = calibration.inputs.gatherWindows(held, length: calibration.length)
            let heldTeacher = calibration.teacher.gatherWindows(held, length: calibration.length)
            let heldSweep = BlockSweep(windowsPerCall: perCall, length: calibration.length)
            /// The block's error on the held windows, a few windows per forward call (bounded memory).
            func heldError(_ b: Block) throws -> Double {
                try heldSweep.error(b, index: context.blockIndex, inputs: heldInputs, teacher: heldTeacher)
            }
            let scoreOnlyError = try heldError(scoreOnly)
            metrics["score_only_check_error"] = scoreOnlyError
            var learningRate = options.ro_learning_rate
            var accepted = false
            for attempt in 0...options.ro_retries {
                let candidate = try regionalRounds(learningRate: learningRate, attempt: attempt)
                let error = try heldError(candidate)
                metrics[attemptMetric("check_error", attempt)] = error
                if error <= scoreOnlyError {
                    result = candidate
                    metrics["ro_learning_rate_used"] = learningRate
                    accepted = true
                    break
                }
                learningRate /= 10
            }
            if !accepted { metrics["ro_reverted"] = 1 }
        }
        block = result
        let pruned = linears.reduce(0) { $0 + block.masks[$1.name]!.prunedCount }
        let total = linears.reduce(0) { $0 + block.masks[$1.name]!.keep.count }
        if options.ro_iterations > 0 {
            var changed = 0
            for l in linears { changed += zip(scoreOnly.masks[l.name]!.keep, block.masks[l.name]!.keep).reduce(0) { $0 + ($1.0 != $1.1 ? 1 : 0) } }
            metrics["mask_changed_fraction"] = total > 0 ? Double(changed) / Double(total) : 0
        }
        metrics["pruned"] = Double(pruned)
        metrics["sparsity"] = total > 0 ? Double(pruned) / Double(total) : 0
        return PassReport(pass: Self.name, metrics: metrics)
    }

    /// Windows per forward call of the pass's own checks and norms (as many as the pipeline's calls); windows cut to
    /// `sample_tokens` go proportionally more per call.
    static let windowsPerCall = 4

    /// ‖X_j‖₂ over the tokens of calibration `windows` of each value in `values`, on `block` as it is now.
    static func inputNorms(of block: Block, index: Int, calibration: CalibrationActivations, windows: [Int], values: Set<String>,
                           windowsPerCall: Int = windowsPerCall) throws -> [String: [Float]] {
        var sums: [String: [Double]] = [:]
        var w = 0
        while w < windows.count {
            let n = min(windowsPerCall, windows.count - w)
            let context = ExecutionContext(batch: n, length: calibration.length)
            let input = calibration.inputs.gatherWindows(Array(windows[w..<(w + n)]), length: calibration.length)
            let captured = try BlockExecutor.forward(block, index: index, input: input, context: context, capture: values).values
            for (name, x) in captured {
                if sums[name] == nil { sums[name] = [Double](repeating: 0, count: x.shape[1]) }
                WandaScore.accumulateColumnSquares(x, into: &sums[name]!)
            }
            w += n
        }
        return sums.mapValues { $0.map { Float($0.squareRoot()) } }
    }
}
