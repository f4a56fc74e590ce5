import LancetIR
import LancetRuntime
import LancetTensor

/// A SwiGLU feed-forward whose active channels are chosen once per sequence from its prompt (IFPruning-style
/// input-dependent FFN pruning).
///
/// Parameters under the node's prefix `p`: the full FFN, `p.gate.weight` and `p.up.weight` `[width, hidden]` and
/// `p.down.weight` `[hidden, width]`, and the predictor's (`ChannelPredictor`). The first `promptTokens` tokens of a
/// sequence (all of its first call when shorter) are its prompt: they run the full FFN, and the op scores every
/// channel from them and keeps the `keep` best. Every later token runs only those channels:
///
/// - in one call over whole sequences (evaluation, calibration: no KV cache) the channels of each sequence are chosen
///   from its own prompt rows and the rows after the prompt get the FFN with the other channels' activations zeroed;
/// - with a KV cache (generation), the prefill (`startPosition == 0`) chooses and stores the chosen channels' gate and
///   up rows and down columns in the sequence's state, and every later call runs that gathered, dense FFN of `keep`
///   channels: fewer FLOPs and bytes per decoded token, not a multiplication by zeros.
///
/// With `repair`, each prompt also refits its kept channels' down columns against the full FFN on the prompt (see
/// `repaired`); the tokens after it read through those. With `sinkTokens`, the first tokens of each prompt (the attention
/// sink's outsized activations) are left out of the statistics the choice and the refit read.
///
/// With `afterDown`, the tokens after the prompt read their output through a down projection of their own,
/// `p.after.down.weight` (the one a `fit:` refits for the masked FFN, while the prompt keeps the dense one).
///
/// The chosen channels of every sequence are recorded in `context.routing[node]` (`keep` ids per sequence, in
/// channel order). The VJP holds the choice (and the imputed prompt means) fixed. The predictor `oracle` chooses from the tokens after the prompt,
/// which it cannot see when generating: it is an evaluation device (the best a prompt-time choice could do).
public struct DynamicFFNOp: Op {
    public static let kind = "dynamic-ffn"
    /// The parameter prefix (the node's name).
    public var prefix: String
    /// Channels active after the prompt.
    public var keep: Int
    /// Tokens of the prompt the choice reads.
    public var promptTokens: Int
    /// How channels are scored.
    public var predictor: ChannelPredictor
    /// Whether the tokens after the prompt have their own down projection (`p.after.down.weight`).
    public var afterDown: Bool
    /// Tokens at the start of each prompt left out of its statistics (the first position of a sequence carries the
    /// attention sink's outsized activations, which say nothing about the text).
    public var sinkTokens: Int
    /// The ridge of each prompt's own refit of its kept channels' down columns (0: none); see `repaired`.
    public var repair: Double
    /// Whether a dropped channel's activation after the prompt is its mean over the prompt instead of zero (a bias,
    /// `Σ_dropped mean_prompt(a_c) · down[:, c]`, made once per sequence at prefill).
    public var impute: Bool

    /// Creates the op.
    public init(prefix: String, keep: Int, promptTokens: Int, predictor: ChannelPredictor, afterDown: Bool = false, impute: Bool = false, sinkTokens: Int = 0, repair: Double = 0) {
        self.prefix = prefix
        self.keep = keep
        self.promptTokens = promptTokens
        self.predictor = predictor
        self.afterDown = afterDown
        self.sinkTokens = sinkTokens
        self.repair = repair
        self.impute = impute
    }

    /// The down projection the tokens after the prompt read: `p.after.down.weight` with `afterDown`, else the FFN's.
    public var afterDownName: String { afterDown ? prefix + ".after.down.weight" : ffnNames.down }

    /// The FFN's parameter names.
    public var ffnNames: (gate: String, up: String, down: String) {
        (prefix + ".gate.weight", prefix + ".up.weight", prefix + ".down.weight")
    }

    public var parameterNames: [String] {
        [ffnNames.gate, ffnNames.up, ffnNames.down] + (afterDown ? [afterDownName] : []) + predictor.parameterNames(prefix: prefix)
    }

    /// The FFN's weights (not the predictor's).
    public var fittableParameters: [String] { [ffnNames.gate, ffnNames.up, ffnNames.down] + (afterDown ? [afterDownName] : []) }

    public init(attributes a: [String: OpAttribute]) throws {
        prefix = try a.string("prefix")
        keep = try a.int("keep")
        promptTokens = try a.int("prompt_tokens")
        predictor = try ChannelPredictor(attributes: a)
        afterDown = a["after_down"]?.bool ?? false
        impute = a["impute"]?.bool ?? false
        sinkTokens = a["sink_tokens"]?.int ?? 0
        repair = a["repair"]?.double ?? 0
        guard repair >= 0 else { throw OpShapeError("dynamic-ffn: repair must be at least 0, got \(repair)") }
        guard sinkTokens >= 0 else { throw OpShapeError("dynamic-ffn: sink_tokens must be at least 0, got \(sinkTokens)") }
        guard keep >= 1 else { throw OpShapeError("dynamic-ffn: keep must be at least 1, got \(keep)") }
        guard promptTokens >= 1 else { throw OpShapeError("dynamic-ffn: prompt_tokens must be at least 1, got \(promptTokens)") }
    }

    public var attributes: [String: OpAttribute] {
        ["prefix": .string(prefix), "keep": .int(keep), "prompt_tokens": .int(promptTokens), "after_down": .bool(afterDown), "impute": .bool(impute),
         "sink_tokens": .int(sinkTokens), "repair": .double(repair)]
            .merging(predictor.attributes) { $1 }
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("dynamic-ffn takes 1 input, got \(inputs.count)") }
        let h = inputs[0]
        let g = try parameters.require(ffnNames.gate), u = try parameters.require(ffnNames.up), d = try parameters.require(ffnNames.down)
        guard g.rank == 2, g.shape[1] == h, u.shape == g.shape, d.shape == [h, g.shape[0]] else {
            throw OpShapeError("dynamic-ffn '\(ffnNames.gate)' \(g.shape), '\(ffnNames.up)' \(u.shape), '\(ffnNames.down)' \(d.shape) do not form a SwiGLU of width \(h)")
        }
        guard keep <= g.shape[0] else { throw OpShapeError("dynamic-ffn keeps \(keep) of only \(g.shape[0]) channels") }
        if afterDown {
            let after = try parameters.require(afterDownName)
            guard after.shape == d.shape else { throw OpShapeError("dynamic-ffn '\(afterDownName)' has shape \(after.shape), expected \(d.shape)") }
        }
        try predictor.check(width: g.shape[0], prefix: prefix, parameters: parameters)
        return [h]
    }

    /// What a sequence's prefill leaves for its decode steps: the chosen channels and their gathered weights.
    public struct Choice: @unchecked Sendable {
        /// The chosen channels, ascending.
        public var channels: [Int]
        /// Gate and up rows `[keep, hidden]` and down columns `[hidden, keep]` of the chosen channels.
        public var gate: Tensor, up: Tensor, down: Tensor
        /// With `impute`, the dropped channels' prompt means through their down columns `[1, hidden]`, added to every
        /// later token's output.
        public var bias: Tensor?
    }

    /// The gated activations `silu(gate·x) ⊙ up·x` of every row, `[tokens, width]`, with the gate and up products.
    func activations(_ x: Tensor, parameters: ParameterLookup, half: HalfWeights? = nil) throws -> (gate: Tensor, up: Tensor, gated: Tensor) {
        let g = Linear.apply(x, weight: try parameters.require(ffnNames.gate), half: half)
        let u = Linear.apply(x, weight: try parameters.require(ffnNames.up), half: half)
        return (g, u, Self.gated(g, u))
    }

    /// `silu(g) ⊙ u`, element by element.
    static func gated(_ g: Tensor, _ u: Tensor) -> Tensor {
        var a = Tensor(uninitializedShape: g.shape)
        a.withUnsafeMutableBufferPointer { ap in g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in
            if let out = ap.baseAddress { swiglu(gate: gp.baseAddress!, up: up.baseAddress!, count: ap.count, out: out) }
        }}}
        return a
    }

    /// The rows of each sequence of a call: its prompt, and the rows after it.
    func sequenceRows(_ b: Int, context: ExecutionContext) -> (prompt: Range<Int>, after: Range<Int>) {
        let start = b * context.length, prompt = min(promptTokens, context.length)
        return (start..<(start + prompt), (start + prompt)..<(start + context.length))
    }

    /// The prompt rows its statistics read: all but the first `sinkTokens` (at least one row stays).
    func statisticsRows(_ prompt: Range<Int>) -> Range<Int> {
        (prompt.lowerBound + min(sinkTokens, max(prompt.count - 1, 0)))..<prompt.upperBound
    }

    /// The channels each sequence of a whole-sequence call keeps, from its gated activations `a`.
    func choose(_ a: Tensor, context: ExecutionContext, parameters: ParameterLookup) throws -> [[Int]] {
        let down = try parameters.require(ffnNames.down)
        let columnNorms = ChannelContribution.columnNorms(down)
        return try (0..<context.batch).map { b in
            let rows = sequenceRows(b, context: context)
            let read = predictor == .oracle && !rows.after.isEmpty ? rows.after : statisticsRows(rows.prompt)
            let features = ChannelContribution.rms(a, rows: read, columnNorms: columnNorms)
            let scores = try predictor.scores(features, prefix: prefix, parameters: parameters)
            return ChannelContribution.top(scores, keep: keep)
        }
    }

    /// Sets every channel not in `channels[b]` in the rows after each sequence's prompt to `fill[b][c]` (zero
    /// without `fill`); in a call after the prefill every row is after the prompt.
    func mask(_ a: inout Tensor, channels: [[Int]], context: ExecutionContext, fill: [[Float]]? = nil) {
        let (rows, width) = (a.shape[0], a.shape[1])
        a.withUnsafeMutableBufferPointer { p in
            for (b, kept) in channels.enumerated() {
                var on = [Bool](repeating: false, count: width)
                for c in kept { on[c] = true }
                let after = context.startPosition > 0 ? 0..<rows : sequenceRows(b, context: context).after
                for r in after {
                    let row = p.baseAddress! + r * width
                    for c in 0..<width where !on[c] { row[c] = fill?[b][c] ?? 0 }
                }
            }
        }
    }

    /// With `impute`, each sequence's mean gated activation per channel over its prompt rows (nil without `impute`).
    func promptMeans(_ a: Tensor, context: ExecutionContext) -> [[Float]]? {
        guard impute else { return nil }
        let width = a.shape[1]
        return (0..<context.batch).map { b in
            let rows = statisticsRows(sequenceRows(b, context: context).prompt)
            var sums = [Double](repeating: 0, count: width)
            a.withUnsafeBufferPointer { p in for r in rows { for c in 0..<width { sums[c] += Double(p[r * width + c]) } } }
            return sums.map { Float($0 / Double(max(rows.count, 1))) }
        }
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let x = inputs[0]
        if context.startPosition > 0 {
            let choice = try storedChoice(context)
            context.routing[context.nodeName] = choice.channels.map(Int32.init)
            return [Self.gatheredForward(x, choice: choice)]
        }
        var (_, _, a) = try activations(x, parameters: parameters, half: context.halfWeights)
        let channels = try choose(a, context: context, parameters: parameters)
        context.routing[context.nodeName] = channels.flatMap { $0.map(Int32.init) }
        if context.sequenceState != nil, predictor == .oracle {
            throw OpShapeError("dynamic-ffn '\(context.nodeName)': the oracle predictor reads the tokens after the prompt and cannot generate")
        }
        let means = promptMeans(a, context: context)
        let downs = repair > 0 ? try (0..<context.batch).map { b in
            try repaired(a, rows: statisticsRows(sequenceRows(b, context: context).prompt), channels: channels[b], parameters: parameters)
        } : nil
        if let state = context.sequenceState {
            var choice = try gathered(channels[0], down: downs?[0], parameters: parameters)
            if let means { choice.bias = try imputedBias(means[0], channels: channels[0], parameters: parameters) }
            state.set(choice, block: context.blockIndex, node: context.nodeName)
        }
        if downs == nil { mask(&a, channels: channels, context: context, fill: means) }
        return [try readout(a, channels: channels, downs: downs, context: context, parameters: parameters)]
    }

    /// The prompt's own down columns for its kept channels S, the ridge least squares over its statistics rows
    ///
    ///     min_X ‖A_S Xᵀ − A Dᵀ‖² + λ‖X − D₀_S‖²,   λ = repair · mean diag(A_Sᵀ A_S),
    ///
    /// (A the prompt's gated activations, D the dense down projection, D₀ the after-prompt one): the kept channels'
    /// readout that best reproduces the full FFN on this prompt. It runs once per prompt at prefill (a `[keep, keep]`
    /// Gram and solve per block), and every later token reads through it.
    func repaired(_ a: Tensor, rows: Range<Int>, channels: [Int], parameters: ParameterLookup) throws -> Tensor {
        let r = Array(rows)
        let chosen = BlockSlicing.gather(a, rows: r, columns: channels)
        let target = Linear.apply(a.gatherRows(r), weight: try parameters.require(ffnNames.down))
        let prior = BlockSlicing.gather(try parameters.require(afterDownName), columns: channels)
        var gram = Tensor(zeros: [channels.count, channels.count])
        accumulateGram(chosen, into: &gram)
        let lambda = gram.ridgeLambda(damping: repair)
        gram = gram.addingToDiagonal(lambda)
        var rhs = matmul(chosen, target, transposeA: true)
        rhs.add(prior.transposed(), scale: Float(lambda))
        return try solveSPD(gram, rhs).transposed()
    }

    /// The prompt rows' and the later rows' indices over the call's sequences.
    func rowSets(_ context: ExecutionContext) -> (prompt: [Int], after: [Int]) {
        var prompt: [Int] = [], after: [Int] = []
        for b in 0..<context.batch {
            let rows = sequenceRows(b, context: context)
            prompt += Array(rows.prompt)
            after += Array(rows.after)
        }
        return (prompt, after)
    }

    /// The FFN's output from its gated activations: the prompt rows through the dense down projection; the rest
    /// through each sequence's repaired columns `downs[b]` of its kept `channels[b]`, or (`a` masked) through the
    /// after-prompt down projection (a single product when that is the dense one).
    func readout(_ a: Tensor, channels: [[Int]], downs: [Tensor]?, context: ExecutionContext, parameters: ParameterLookup) throws -> Tensor {
        let down = try parameters.require(ffnNames.down)
        guard afterDown || downs != nil else { return Linear.apply(a, weight: down, half: context.halfWeights) }
        let sets = rowSets(context)
        var y = Tensor(zeros: [a.shape[0], down.shape[0]])
        if !sets.prompt.isEmpty { Self.scatter(Linear.apply(a.gatherRows(sets.prompt), weight: down, half: context.halfWeights), into: &y, rows: sets.prompt) }
        if let downs {
            for b in 0..<context.batch {
                let after = Array(sequenceRows(b, context: context).after)
                guard !after.isEmpty else { continue }
                Self.scatter(Linear.apply(BlockSlicing.gather(a, rows: after, columns: channels[b]), weight: downs[b]), into: &y, rows: after)
            }
        } else if !sets.after.isEmpty {
            Self.scatter(Linear.apply(a.gatherRows(sets.after), weight: try parameters.require(afterDownName), half: context.halfWeights),
                         into: &y, rows: sets.after)
        }
        return y
    }

    /// y[rows[r]] = values[r] for every r.
    static func scatter(_ values: Tensor, into y: inout Tensor, rows: [Int]) {
        let width = y.shape[1]
        y.withUnsafeMutableBufferPointer { yp in values.withUnsafeBufferPointer { vp in
            for (r, row) in rows.enumerated() { (yp.baseAddress! + row * width).update(from: vp.baseAddress! + r * width, count: width) }
        }}
    }

    /// The prefill's choice, kept in the sequence's state.
    func storedChoice(_ context: ExecutionContext) throws -> Choice {
        guard let choice = context.sequenceState?.value(block: context.blockIndex, node: context.nodeName) as? Choice else {
            throw OpShapeError("dynamic-ffn '\(context.nodeName)' of block \(context.blockIndex): a call at position \(context.startPosition) without the prompt's channel choice (the prefill must start at position 0 with a KV cache)")
        }
        return choice
    }

    /// The chosen channels' weights, gathered into a dense FFN of `channels.count` channels; `down` (the prompt's
    /// repaired columns) in place of the after-prompt down projection's columns when given.
    func gathered(_ channels: [Int], down: Tensor? = nil, parameters: ParameterLookup) throws -> Choice {
        Choice(channels: channels,
               gate: BlockSlicing.gather(try parameters.require(ffnNames.gate), rows: channels),
               up: BlockSlicing.gather(try parameters.require(ffnNames.up), rows: channels),
               down: try down ?? BlockSlicing.gather(try parameters.require(afterDownName), columns: channels))
    }

    /// `Σ_{c ∉ channels} means[c] · down_after[:, c]`, `[1, hidden]`: the dropped channels' prompt means read out.
    func imputedBias(_ means: [Float], channels: [Int], parameters: ParameterLookup) throws -> Tensor {
        let kept = Set(channels)
        var dropped = means
        for c in kept { dropped[c] = 0 }
        return Linear.apply(Tensor(shape: [1, means.count], dropped), weight: try parameters.require(afterDownName))
    }

    /// The gathered FFN on `x`: three products of `keep` channels (for one decoded token `Linear.applySwiGLU`, the
    /// three matrix–vector products and the gate in one hand-off to the cores, the same values), plus the imputed bias.
    static func gatheredForward(_ x: Tensor, choice: Choice) -> Tensor {
        var y = x.shape[0] == 1 && !choice.channels.isEmpty
            ? Linear.applySwiGLU(x, gate: choice.gate, up: choice.up, down: choice.down)
            : Linear.apply(gated(Linear.apply(x, weight: choice.gate), Linear.apply(x, weight: choice.up)), weight: choice.down)
        if let bias = choice.bias {
            let h = bias.count
            y.withUnsafeMutableBufferPointer { yp in bias.withUnsafeBufferPointer { bp in
                for r in 0..<x.shape[0] { add(yp.baseAddress! + r * h, bp.baseAddress!, count: h, out: yp.baseAddress! + r * h) }
            }}
        }
        return y
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        let x = inputs[0], dy = outputGradients[0]
        let names = ffnNames
        let (g, u, full) = try activations(x, parameters: parameters)
        var a = full
        let decoding = context.startPosition > 0
        let channels = decoding ? [try storedChoice(context).channels] : try choose(a, context: context, parameters: parameters)
        mask(&a, channels: channels, context: context, fill: decoding ? nil : promptMeans(full, context: context))
        var da: Tensor
        if decoding || !afterDown {
            let weight = decoding ? afterDownName : names.down
            Linear.accumulate(&parameterGradients[weight], Linear.weightGradient(dy, a))
            da = Linear.inputGradient(dy, weight: try parameters.require(weight))
        } else {
            da = Tensor(zeros: a.shape)
            let sets = rowSets(context)
            for (rows, weight) in [(sets.prompt, names.down), (sets.after, afterDownName)] where !rows.isEmpty {
                let dyRows = dy.gatherRows(rows)
                Linear.accumulate(&parameterGradients[weight], Linear.weightGradient(dyRows, a.gatherRows(rows)))
                Self.scatter(Linear.inputGradient(dyRows, weight: try parameters.require(weight)), into: &da, rows: rows)
            }
        }
        mask(&da, channels: channels, context: context)
        var dGate = Tensor(uninitializedShape: g.shape), dUp = Tensor(uninitializedShape: u.shape)
        dGate.withUnsafeMutableBufferPointer { dg in dUp.withUnsafeMutableBufferPointer { du in
            g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in da.withUnsafeBufferPointer { dp in
                if let out = dg.baseAddress {
                    swigluBackward(gate: gp.baseAddress!, up: up.baseAddress!, dOut: dp.baseAddress!, count: dg.count, dGate: out, dUp: du.baseAddress!)
                }
            }}}
        }}
        Linear.accumulate(&parameterGradients[names.gate], Linear.weightGradient(dGate, x))
        Linear.accumulate(&parameterGradients[names.up], Linear.weightGradient(dUp, x))
        var dx = Linear.inputGradient(dGate, weight: try parameters.require(names.gate))
        dx.add(Linear.inputGradient(dUp, weight: try parameters.require(names.up)))
        return [dx]
    }

    /// A token after the prompt runs `keep` channels and reads their weights (the prompt's full FFN and the predictor
    /// are not counted: they run once per sequence).
    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        let h = Double(inputs[0])
        let width = Double(parameters.parameter(ffnNames.gate)?.shape[0] ?? 0)
        let active = min(Double(keep), width)
        return OpCost(flops: Double(tokens) * 6 * h * active, parameterBytes: 4 * 3 * h * active)
    }
}

/// The op's output is affine in the down projection the tokens after the prompt read.
extension DynamicFFNOp: LinearReadoutOp {
    /// The after-prompt down projection when the op has one (the prompt rows' dense output is then the offset), else
    /// the down projection.
    public var readoutParameters: [String] { [afterDownName] }

    /// The features of `x` taken as one sequence (`readout` gives them with the offset).
    public func readoutFeatures(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor {
        try readout(x, parameters: parameters, context: ExecutionContext(batch: 1, length: x.shape[0])).features
    }

    /// The features are the gated activations of the call's sequences, each masked after its prompt with its own
    /// channels. With `afterDown` the prompt rows' features are zero and their output through the dense down projection
    /// is the offset. With `repair`, a later row's features are `λ · a_S M_b` in the columns S of its sequence's kept
    /// channels and its offset `a_S M_b A_SᵀY`, `M_b = (A_SᵀA_S + λI)⁻¹` over the prompt's statistics rows: the
    /// refit `X_bᵀ = M_b (A_SᵀY + λ D₀_Sᵀ)` split into what the prior D₀ sets and the rest.
    public func readout(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> (features: Tensor, offset: Tensor?) {
        guard afterDown || repair == 0 else {
            throw OpShapeError("dynamic-ffn: a repairing op is fitted through its after-prompt down projection, which it lacks")
        }
        var (_, _, a) = try activations(x, parameters: parameters)
        let channels = try choose(a, context: context, parameters: parameters)
        guard afterDown else {
            mask(&a, channels: channels, context: context, fill: promptMeans(a, context: context))
            return (a, nil)
        }
        let down = try parameters.require(ffnNames.down)
        let (rows, width, hidden) = (a.shape[0], a.shape[1], down.shape[0])
        var offset = Tensor(zeros: [rows, hidden])
        let prompt = rowSets(context).prompt
        if !prompt.isEmpty { Self.scatter(Linear.apply(a.gatherRows(prompt), weight: down), into: &offset, rows: prompt) }
        guard repair > 0 else {
            mask(&a, channels: channels, context: context, fill: promptMeans(a, context: context))
            a.withUnsafeMutableBufferPointer { p in for r in prompt { (p.baseAddress! + r * width).update(repeating: 0, count: width) } }
            return (a, offset)
        }
        var features = Tensor(zeros: [rows, width])
        for b in 0..<context.batch {
            let after = Array(sequenceRows(b, context: context).after)
            guard !after.isEmpty else { continue }
            let statistics = Array(statisticsRows(sequenceRows(b, context: context).prompt))
            let kept = BlockSlicing.gather(a, rows: statistics, columns: channels[b])
            var gram = Tensor(zeros: [kept.shape[1], kept.shape[1]])
            accumulateGram(kept, into: &gram)
            let lambda = gram.ridgeLambda(damping: repair)
            let inverse = try spdInverse(gram.addingToDiagonal(lambda))
            let later = matmul(BlockSlicing.gather(a, rows: after, columns: channels[b]), inverse)   // a_S M
            let cross = matmul(kept, Linear.apply(a.gatherRows(statistics), weight: down), transposeA: true)   // A_Sᵀ Y
            Self.scatter(matmul(later, cross), into: &offset, rows: after)
            features.withUnsafeMutableBufferPointer { f in later.withUnsafeBufferPointer { l in
                for (i, r) in after.enumerated() {
                    for (j, c) in channels[b].enumerated() { f[r * width + c] = Float(lambda) * l[i * channels[b].count + j] }
                }
            }}
        }
        return (features, offset)
    }
}
