import LancetTensor

/// A mixture of SwiGLU experts with a router and top-k routing, and an optional shared expert.
///
/// Parameters, under the node's prefix `p`: the router (see `MoERouter`); for each expert `e`,
/// `p.experts.e.gate.weight` and `p.experts.e.up.weight` `[width_e, hidden]` and `p.experts.e.down.weight`
/// `[hidden, width_e]` (experts may differ in width); with a shared expert, `p.shared.{gate,up,down}.weight`.
/// The router scores every expert, `probabilities = softmax(scores)`, and each token goes to the k most probable
/// experts. Its output is `Σ_{e ∈ top-k} w_e · expert_e(x)` plus `shared(x)`, with `w` as `weighting` says: the
/// probabilities of the chosen experts (renormalised to sum to 1 when `normalizeTopK`), or 1 for each (`unit`,
/// CMoE's training-free mixture). Only routed tokens are computed by each expert: the compute is sparse, not a
/// multiplication by zeros. The chosen experts of every token are recorded in `context.routing[node]` (k ids per
/// token).
public struct MoEOp: Op {
    public static let kind = "moe"
    /// The parameter prefix (the node's name).
    public var prefix: String
    /// Number of routed experts.
    public var experts: Int
    /// Experts per token.
    public var topK: Int
    /// Whether the top-k weights are renormalised to sum to one (`softmax` weighting).
    public var normalizeTopK: Bool
    /// Whether a shared expert is applied to every token.
    public var hasSharedExpert: Bool
    /// How experts are scored.
    public var router: MoERouter
    /// How the chosen experts' outputs are weighted.
    public var weighting: MoEWeighting

    /// Creates the op.
    public init(prefix: String, experts: Int, topK: Int, normalizeTopK: Bool = true, hasSharedExpert: Bool = false,
                router: MoERouter = .linear, weighting: MoEWeighting = .softmax) {
        self.prefix = prefix
        self.experts = experts
        self.topK = topK
        self.normalizeTopK = normalizeTopK
        self.hasSharedExpert = hasSharedExpert
        self.router = router
        self.weighting = weighting
    }

    /// The router's parameter names: `p.router.weight` (linear) or `p.router.gate.weight` and `p.router.up.weight`
    /// (swiglu), each `[experts, hidden]`.
    public var routerNames: [String] {
        switch router {
        case .linear: return [prefix + ".router.weight"]
        case .swiglu: return [prefix + ".router.gate.weight", prefix + ".router.up.weight"]
        }
    }

    /// The parameter names of one SwiGLU expert (`gate`, `up`, `down`), or of the shared expert for nil.
    public func expertNames(_ e: Int?) -> (gate: String, up: String, down: String) {
        let base = e.map { "\(prefix).experts.\($0)" } ?? "\(prefix).shared"
        return (base + ".gate.weight", base + ".up.weight", base + ".down.weight")
    }

    /// The router and every expert's (and the shared expert's) weights.
    public var fittableParameters: [String] { parameterNames }

    public var parameterNames: [String] {
        var names = routerNames
        for e in 0..<experts { let n = expertNames(e); names += [n.gate, n.up, n.down] }
        if hasSharedExpert { let n = expertNames(nil); names += [n.gate, n.up, n.down] }
        return names
    }

    public init(attributes a: [String: OpAttribute]) throws {
        prefix = try a.string("prefix")
        experts = try a.int("experts")
        topK = try a.int("top_k")
        normalizeTopK = try a.bool("normalize_top_k")
        hasSharedExpert = try a.bool("shared_expert")
        // Absent in models written before routers had kinds: a linear router with softmax weights.
        let routerName = a["router"]?.string ?? MoERouter.linear.rawValue
        guard let r = MoERouter(rawValue: routerName) else {
            throw OpShapeError("moe router '\(routerName)' is not one of \(MoERouter.allCases.map(\.rawValue))")
        }
        let weightingName = a["weighting"]?.string ?? MoEWeighting.softmax.rawValue
        guard let w = MoEWeighting(rawValue: weightingName) else {
            throw OpShapeError("moe weighting '\(weightingName)' is not one of \(MoEWeighting.allCases.map(\.rawValue))")
        }
        router = r
        weighting = w
    }

    public var attributes: [String: OpAttribute] {
        ["prefix": .string(prefix), "experts": .int(experts), "top_k": .int(topK), "normalize_top_k": .bool(normalizeTopK),
         "shared_expert": .bool(hasSharedExpert), "router": .string(router.rawValue), "weighting": .string(weighting.rawValue)]
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("moe takes 1 input, got \(inputs.count)") }
        guard experts >= 1, (1...experts).contains(topK) else { throw OpShapeError("top_k \(topK) must be in 1...\(experts)") }
        let h = inputs[0]
        for name in routerNames {
            let r = try parameters.require(name)
            guard r.shape == [experts, h] else { throw OpShapeError("router '\(name)' has shape \(r.shape), expected [\(experts), \(h)]") }
        }
        for e in (0..<experts).map { Optional($0) } + (hasSharedExpert ? [nil] : []) {
            let n = expertNames(e)
            let g = try parameters.require(n.gate), u = try parameters.require(n.up), d = try parameters.require(n.down)
            guard g.rank == 2, g.shape[1] == h, u.shape == g.shape, d.shape == [h, g.shape[0]] else {
                throw OpShapeError("expert '\(n.gate)' \(g.shape), '\(n.up)' \(u.shape), '\(n.down)' \(d.shape) do not form a SwiGLU of width \(h)")
            }
        }
        return [h]
    }

    /// Expert `e`'s output on every token of `x` (`nil`: the shared expert's), whatever the router would choose.
    public func expertOutput(_ x: Tensor, expert e: Int?, parameters: ParameterLookup) throws -> Tensor {
        try SwiGLU.forward(x, names: expertNames(e), parameters: parameters).output
    }

    /// Chosen experts and their weights per token, plus the router's scores and probabilities.
    struct Routing {
        var chosen: [Int32]      // [tokens, topK]
        var weights: [Float]     // [tokens, topK]
        var probabilities: Tensor // [tokens, experts]
        /// swiglu router: the gate and up products of every expert's representative row and their SwiGLU activation
        /// (the scores before |·|), [tokens, experts] each.
        var routerGate: Tensor?
        var routerUp: Tensor?
        var routerActivation: Tensor?
    }

    func route(_ x: Tensor, parameters: ParameterLookup, half: HalfWeights? = nil) throws -> Routing {
        var probs: Tensor
        var routerGate: Tensor?, routerUp: Tensor?, routerActivation: Tensor?
        switch router {
        case .linear:
            probs = Linear.apply(x, weight: try parameters.require(routerNames[0]), half: half)
        case .swiglu:
            let g = Linear.apply(x, weight: try parameters.require(routerNames[0]), half: half)
            let u = Linear.apply(x, weight: try parameters.require(routerNames[1]), half: half)
            let activation = SwiGLU.gated(g, u)
            probs = Elementwise.map(activation) { abs($0) }
            (routerGate, routerUp, routerActivation) = (g, u, activation)
        }
        let t = x.shape[0]
        var chosen = [Int32](repeating: 0, count: t * topK), weights = [Float](repeating: 0, count: t * topK)
        probs.withUnsafeMutableBufferPointer { p in
            for i in 0..<t {
                let row = p.baseAddress! + i * experts
                softmax(inPlace: row, count: experts)
                let order = Self.topIndices(UnsafePointer(row), count: experts, k: topK)
                let total = order.reduce(Float(0)) { $0 + row[$1] }
                for (j, e) in order.enumerated() {
                    chosen[i * topK + j] = Int32(e)
                    switch weighting {
                    case .softmax: weights[i * topK + j] = normalizeTopK ? row[e] / total : row[e]
                    case .unit: weights[i * topK + j] = 1
                    }
                }
            }
        }
        return Routing(chosen: chosen, weights: weights, probabilities: probs, routerGate: routerGate, routerUp: routerUp,
                       routerActivation: routerActivation)
    }

    /// The indices of the `k` largest of `count` scores, largest first, ties to the lower index: how a token chooses its
    /// experts.
    public static func topIndices(_ scores: UnsafePointer<Float>, count: Int, k: Int) -> ArraySlice<Int> {
        (0..<count).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(k)
    }

    /// Tokens routed to each expert, with the slot (0..<topK) they chose it in.
    func assignments(_ r: Routing, tokens: Int) -> [[(token: Int, slot: Int)]] {
        var lists = [[(token: Int, slot: Int)]](repeating: [], count: experts)
        for i in 0..<tokens { for j in 0..<topK { lists[Int(r.chosen[i * topK + j])].append((i, j)) } }
        return lists
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let x = inputs[0], t = x.shape[0], h = x.shape[1]
        let half = context.halfWeights
        let routing = try route(x, parameters: parameters, half: half)
        context.routing[context.nodeName] = routing.chosen
        var out = Tensor(zeros: x.shape)
        if hasSharedExpert { out = try SwiGLU.forward(x, names: expertNames(nil), parameters: parameters, half: half).output }
        for (e, list) in assignments(routing, tokens: t).enumerated() where !list.isEmpty {
            let xe = SwiGLU.gather(x, rows: list.map(\.token))
            let ye = try SwiGLU.forward(xe, names: expertNames(e), parameters: parameters, half: half).output
            out.withUnsafeMutableBufferPointer { o in
                ye.withUnsafeBufferPointer { y in
                    for (r, a) in list.enumerated() {
                        axpy(alpha: routing.weights[a.token * topK + a.slot], y.baseAddress! + r * h, o.baseAddress! + a.token * h, count: h)
                    }
                }
            }
        }
        return [out]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        let x = inputs[0], dy = outputGradients[0], t = x.shape[0], h = x.shape[1]
        let routing = try route(x, parameters: parameters)
        var dx = hasSharedExpert
            ? try SwiGLU.backward(x, dy, names: expertNames(nil), parameters: parameters, gradients: &parameterGradients)
            : Tensor(zeros: x.shape)
        var dWeights = [Float](repeating: 0, count: t * topK)
        for (e, list) in assignments(routing, tokens: t).enumerated() where !list.isEmpty {
            let rows = list.map(\.token)
            let xe = SwiGLU.gather(x, rows: rows)
            let ye = try SwiGLU.forward(xe, names: expertNames(e), parameters: parameters).output
            var dye = Tensor(zeros: ye.shape)
            dy.withUnsafeBufferPointer { g in ye.withUnsafeBufferPointer { y in dye.withUnsafeMutableBufferPointer { dp in
                for (r, a) in list.enumerated() {
                    let gRow = g.baseAddress! + a.token * h
                    scale(gRow, by: routing.weights[a.token * topK + a.slot], count: h, out: dp.baseAddress! + r * h)
                    dWeights[a.token * topK + a.slot] = dot(gRow, y.baseAddress! + r * h, count: h)
                }
            }}}
            let dxe = try SwiGLU.backward(xe, dye, names: expertNames(e), parameters: parameters, gradients: &parameterGradients)
            SwiGLU.scatterAdd(dxe, into: &dx, rows: rows)
        }
        // Unit weights do not depend on the router: its gradient is zero (its choice is discrete).
        guard weighting == .softmax else {
            for name in routerNames { Linear.accumulate(&parameterGradients[name], Tensor(zeros: try parameters.require(name).shape)) }
            return [dx]
        }
        // Through the top-k weights and the router softmax to the router's scores.
        var dScores = Tensor(zeros: [t, experts])
        routing.probabilities.withUnsafeBufferPointer { p in dScores.withUnsafeMutableBufferPointer { dl in
            for i in 0..<t {
                var dp = [Float](repeating: 0, count: experts)
                let slots = (0..<topK).map { i * topK + $0 }
                if normalizeTopK {
                    let total = slots.reduce(Float(0)) { $0 + p[i * experts + Int(routing.chosen[$1])] }
                    let mean = slots.reduce(Float(0)) { $0 + routing.weights[$1] * dWeights[$1] }
                    for s in slots { dp[Int(routing.chosen[s])] = (dWeights[s] - mean) / total }
                } else {
                    for s in slots { dp[Int(routing.chosen[s])] = dWeights[s] }
                }
                var dot: Float = 0
                for e in 0..<experts { dot += dp[e] * p[i * experts + e] }
                for e in 0..<experts { dl[i * experts + e] = p[i * experts + e] * (dp[e] - dot) }
            }
        }}
        // From the scores to the router's weights and the input.
        let routerGradients: [(name: String, dProducts: Tensor)]
        switch router {
        case .linear:
            routerGradients = [(routerNames[0], dScores)]
        case .swiglu:
            // score = |u·silu(g)|: the activation's gradient is the score's times its sign.
            let signed = Elementwise.zip(dScores, routing.routerActivation!) { d, a in a < 0 ? -d : (a > 0 ? d : 0) }
            let d = SwiGLU.gatedGradients(routing.routerGate!, routing.routerUp!, signed)
            routerGradients = [(routerNames[0], d.gate), (routerNames[1], d.up)]
        }
        for (name, d) in routerGradients {
            Linear.accumulate(&parameterGradients[name], Linear.weightGradient(d, x))
            let dxRouter = Linear.inputGradient(d, weight: try parameters.require(name))
            dx.withUnsafeMutableBufferPointer { dxp in dxRouter.withUnsafeBufferPointer { r in
                if let out = dxp.baseAddress { add(out, r.baseAddress!, count: dxp.count, out: out) }
            }}
        }
        return [dx]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        let h = Double(inputs[0])
        func width(_ e: Int?) -> Double { Double(parameters.parameter(expertNames(e).gate)?.shape[0] ?? 0) }
        let routed = (0..<experts).map { width($0) }
        let meanWidth = routed.reduce(0, +) / Double(max(experts, 1))
        let shared = hasSharedExpert ? width(nil) : 0
        let routerRows = Double(experts * routerNames.count)
        let perToken = 2 * h * routerRows + 6 * h * (Double(topK) * meanWidth + shared)
        let bytes = 4 * (h * routerRows + 3 * h * (routed.reduce(0, +) + shared))
        return OpCost(flops: Double(tokens) * perToken, parameterBytes: bytes)
    }
}

/// How a mixture scores its experts.
public enum MoERouter: String, Sendable, CaseIterable {
    /// `scores = W_router·x` (`p.router.weight`), as Mixtral and llama.cpp do.
    case linear
    /// `scores_e = |(u_e·x)·silu(g_e·x)|` (`p.router.gate.weight`, `p.router.up.weight`): the SwiGLU activation of a
    /// representative channel of each expert, CMoE's analytical router.
    case swiglu
}

/// How a mixture weights the outputs of the experts it chose.
public enum MoEWeighting: String, Sendable, CaseIterable {
    /// The chosen experts' router probabilities (renormalised when `normalizeTopK`).
    case softmax
    /// 1 for every chosen expert: the router only chooses (CMoE's training-free mixture).
    case unit
}

/// The SwiGLU feed-forward `down(silu(gate·x) ⊙ up·x)` used by experts, with its VJP: gemms for the three
/// products, the vectorised `swiglu` kernels between them, and row copies for the gather and scatter.
enum SwiGLU {
    struct Activations { var gate: Tensor; var up: Tensor; var gated: Tensor; var output: Tensor }

    static func forward(_ x: Tensor, names: (gate: String, up: String, down: String), parameters: ParameterLookup,
                        half: HalfWeights? = nil) throws -> Activations {
        let (g, u, a) = try activation(x, names: names, parameters: parameters, half: half)
        return Activations(gate: g, up: u, gated: a, output: Linear.apply(a, weight: try parameters.require(names.down), half: half))
    }

    /// The gate and up products of `x` and their gated activation `silu(g) ⊙ u`: the expert before its down projection.
    static func activation(_ x: Tensor, names: (gate: String, up: String, down: String), parameters: ParameterLookup,
                           half: HalfWeights? = nil) throws -> (gate: Tensor, up: Tensor, gated: Tensor) {
        let g = Linear.apply(x, weight: try parameters.require(names.gate), half: half)
        let u = Linear.apply(x, weight: try parameters.require(names.up), half: half)
        return (g, u, gated(g, u))
    }

    /// silu(g) ⊙ u, element by element (the `swiglu` kernel).
    static func gated(_ g: Tensor, _ u: Tensor) -> Tensor {
        var a = Tensor(uninitializedShape: g.shape)
        a.withUnsafeMutableBufferPointer { ap in g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in
            if let out = ap.baseAddress { swiglu(gate: gp.baseAddress!, up: up.baseAddress!, count: ap.count, out: out) }
        }}}
        return a
    }

    /// The gradients of `gated(g, u)` for its output gradient `d` (the `swigluBackward` kernel).
    static func gatedGradients(_ g: Tensor, _ u: Tensor, _ d: Tensor) -> (gate: Tensor, up: Tensor) {
        var dGate = Tensor(uninitializedShape: g.shape), dUp = Tensor(uninitializedShape: u.shape)
        dGate.withUnsafeMutableBufferPointer { dg in dUp.withUnsafeMutableBufferPointer { du in
            g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in d.withUnsafeBufferPointer { dp in
                if let out = dg.baseAddress {
                    swigluBackward(gate: gp.baseAddress!, up: up.baseAddress!, dOut: dp.baseAddress!, count: dg.count, dGate: out, dUp: du.baseAddress!)
                }
            }}}
        }}
        return (dGate, dUp)
    }

    static func backward(_ x: Tensor, _ dy: Tensor, names: (gate: String, up: String, down: String), parameters: ParameterLookup,
                         gradients: inout [String: Tensor]) throws -> Tensor {
        let act = try forward(x, names: names, parameters: parameters)
        Linear.accumulate(&gradients[names.down], Linear.weightGradient(dy, act.gated))
        let da = Linear.inputGradient(dy, weight: try parameters.require(names.down))
        let (dGate, dUp) = gatedGradients(act.gate, act.up, da)
        Linear.accumulate(&gradients[names.gate], Linear.weightGradient(dGate, x))
        Linear.accumulate(&gradients[names.up], Linear.weightGradient(dUp, x))
        var dx = Linear.inputGradient(dGate, weight: try parameters.require(names.gate))
        let dxUp = Linear.inputGradient(dUp, weight: try parameters.require(names.up))
        dx.withUnsafeMutableBufferPointer { d in dxUp.withUnsafeBufferPointer { u in
            if let dp = d.baseAddress { add(dp, u.baseAddress!, count: d.count, out: dp) }
        }}
        return dx
    }

    /// The rows `rows` of `x`, in that order.
    static func gather(_ x: Tensor, rows: [Int]) -> Tensor {
        let h = x.shape[1]
        return Tensor(shape: [rows.count, h]) { out in
            x.withUnsafeBufferPointer { xp in
                for (r, row) in rows.enumerated() { (out.baseAddress! + r * h).update(from: xp.baseAddress! + row * h, count: h) }
            }
        }
    }

    /// x[rows[r]] += values[r] for every r.
    static func scatterAdd(_ values: Tensor, into x: inout Tensor, rows: [Int]) {
        let h = x.shape[1]
        x.withUnsafeMutableBufferPointer { xp in
            values.withUnsafeBufferPointer { vp in
                for (r, row) in rows.enumerated() { axpy(alpha: 1, vp.baseAddress! + r * h, xp.baseAddress! + row * h, count: h) }
            }
        }
    }
}

extension MoEOp: LinearReadoutOp {
    /// Every routed expert's down projection, then the shared expert's.
    public var readoutParameters: [String] {
        (0..<experts).map { expertNames($0).down } + (hasSharedExpert ? [expertNames(nil).down] : [])
    }

    /// Per token, each chosen expert's gated activation `silu(gate·x) ⊙ up·x` times its routing weight in that
    /// expert's columns (zeros in the columns of experts not chosen), and the shared expert's activation in the last.
    public func readoutFeatures(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor {
        let t = x.shape[0]
        let widths = try readoutParameters.map { try parameters.require($0).shape[1] }
        let offsets = widths.indices.map { widths[..<$0].reduce(0, +) }
        let total = widths.reduce(0, +)
        var z = Tensor(zeros: [t, total])
        let routing = try route(x, parameters: parameters)
        func place(_ a: Tensor, rows: [Int], weights: [Float]?, column: Int) {
            let w = a.shape[1]
            z.withUnsafeMutableBufferPointer { zp in a.withUnsafeBufferPointer { ap in
                for (r, row) in rows.enumerated() {
                    scale(ap.baseAddress! + r * w, by: weights?[r] ?? 1, count: w, out: zp.baseAddress! + row * total + column)
                }
            }}
        }
        for (e, list) in assignments(routing, tokens: t).enumerated() where !list.isEmpty {
            let rows = list.map(\.token)
            let a = try SwiGLU.activation(SwiGLU.gather(x, rows: rows), names: expertNames(e), parameters: parameters).gated
            place(a, rows: rows, weights: list.map { routing.weights[$0.token * topK + $0.slot] }, column: offsets[e])
        }
        if hasSharedExpert {
            let a = try SwiGLU.activation(x, names: expertNames(nil), parameters: parameters).gated
            place(a, rows: Array(0..<t), weights: nil, column: offsets[experts])
        }
        return z
    }
}

extension MoEOp: LinearRouterOp {
    /// The router's weight when the router is linear.
    public var linearRouterParameter: String? { router == .linear ? routerNames[0] : nil }
    /// The routed experts.
    public var routedExperts: Int { experts }
    /// Experts per token.
    public var routedTopK: Int { topK }
    /// Expert `expert`'s output on every token.
    public func routedOutput(_ x: Tensor, expert: Int, parameters: ParameterLookup) throws -> Tensor {
        try expertOutput(x, expert: expert, parameters: parameters)
    }
    /// The shared expert's output, when there is one.
    public func unroutedOutput(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor? {
        hasSharedExpert ? try expertOutput(x, expert: nil, parameters: parameters) : nil
    }
}
