import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Dense → mixture of experts: every targeted block's SwiGLU MLP is carved into one always-active shared expert and
/// routed experts of equal size, each token running the shared expert and its `top_k` routed experts.
///
/// `experts` counts every expert of the MLP's width / `experts` channels, the shared ones included (CMoE's
/// S{shared}A{top_k}E{experts}): the active share of the FFN is (shared + top_k) / experts. The experts are slices of
/// the dense weights (gate and up rows, down columns), so with every expert chosen the mixture is the dense MLP.
///
/// - `method: cmoe` carves as CMoE does (`ExpertPartition.cmoe`, from `ActivationMarkers` on the first `windows`
///   calibration windows, `k_act` channels marked per token); `cluster` runs the balanced clustering to convergence,
///   `cooccurrence` partitions the channels' co-activation graph (both from CMoE's shared group and first partition);
///   `random` is the control.
/// - `shared_by: rate` (CMoE) fills the shared expert with the most often active channels; `importance` with the
///   channels of largest contribution to the MLP's output, ‖act_c‖₂ · ‖down[:, c]‖₂ over the calibration tokens (the
///   score `prune-structured` keeps FFN channels by), so that the shared expert is what a static prune would keep.
/// - `router: analytical` is CMoE's: each routed expert is scored by the SwiGLU activation of its representative
///   channel, |(û·x)·silu(ĝ·x)| with the channel's up and gate rows scaled to unit length (the op's `swiglu` router).
///   `centroid` and `fitted` are linear routers learned from the first `router_windows` calibration windows by
///   `RouterFit`: centroids of the tokens each expert helps most, or a least-squares prediction of each expert's
///   benefit to the token. The `top_k` highest scores choose.
/// - `weighting: unit` adds the chosen experts' outputs with weight 1 (CMoE's training-free mixture; a `fit: lstsq`
///   after the pass fits the experts' scales into their down projections); `softmax` weighs them by the router's
///   softmax renormalised over the chosen experts (Mixtral's and llama.cpp's; a linear router only).
///
/// ```yaml
/// - moefy: {experts: 8, shared: 1, top_k: 1}
/// ```
public struct MoEfyPass: BlockPass {
    public static let name = "moefy"
    public static let summary = "Carve each SwiGLU MLP into a shared expert and routed experts with a router (CMoE)."
    public static let needsCalibration = true
    public static let readsDenseOutputs = false

    /// Options of `moefy`.
    public struct Options: Codable, Sendable {
        /// Experts of equal width the MLP is cut into, shared ones included.
        public var experts = 8
        /// Routed experts each token runs.
        public var top_k = 2
        /// Experts always active (merged into one shared expert).
        public var shared = 0
        /// `cmoe`, `cluster`, `cooccurrence` or `random`.
        public var method = "cmoe"
        /// `rate` or `importance`.
        public var shared_by = "rate"
        /// `analytical`, `centroid` or `fitted`.
        public var router = "analytical"
        /// `unit` or `softmax`.
        public var weighting = "unit"
        /// Calibration windows the learned routers read (default: all).
        public var router_windows: Int? = nil
        /// Calibration windows the carving reads.
        public var windows = 8
        /// Channels marked active per token.
        public var k_act = 10
        /// Defaults.
        public init() {}
    }

    public static var defaultOptions: Options { Options() }
    public static let optionHelp: [String: String] = [
        "experts": "experts of equal width the MLP is cut into, shared ones included (its width must be a multiple)",
        "top_k": "routed experts each token runs",
        "shared": "experts every token runs (merged into one shared expert)",
        "method": "cmoe (activation-rate shared group, one round of balanced clustering of activation patterns), cluster (balanced k-means of the patterns to convergence), cooccurrence (balanced partition of the co-activation graph) or random (the control)",
        "shared_by": "rate (CMoE: the most often active channels form the shared expert) or importance (the channels of largest ‖act‖·‖down column‖ on calibration, as prune-structured ranks them)",
        "router": "analytical (CMoE: the SwiGLU activation of each expert's representative channel), centroid or fitted (linear routers learned from calibration)",
        "weighting": "unit (chosen experts weigh 1, CMoE) or softmax (the router's softmax renormalised over the chosen experts; centroid and fitted routers)",
        "router_windows": "calibration windows the centroid and fitted routers learn from (default: all)",
        "windows": "calibration windows the carving reads (CMoE: 8)",
        "k_act": "channels marked active per token (CMoE: 10)",
    ]

    /// The carving.
    public enum Method: String, Sendable, CaseIterable { case cmoe, cluster, cooccurrence, random }
    /// How the shared expert's channels are chosen.
    public enum SharedBy: String, Sendable, CaseIterable { case rate, importance }
    /// How experts are scored.
    public enum Router: String, Sendable, CaseIterable { case analytical, centroid, fitted }


    public let experts: Int
    public let topK: Int
    public let shared: Int
    public let method: Method
    public let sharedBy: SharedBy
    public let router: Router
    public let weighting: MoEWeighting
    public let routerWindows: Int?
    public let windows: Int
    public let perToken: Int

    public init(options: Options) throws {
        guard options.experts >= 1 else { throw PassOptionError("experts", "must be at least 1, got \(options.experts)") }
        guard (0..<options.experts).contains(options.shared) else {
            throw PassOptionError("shared", "must leave at least one routed expert: 0...\(options.experts - 1), got \(options.shared)")
        }
        guard (1...(options.experts - options.shared)).contains(options.top_k) else {
            throw PassOptionError("top_k", "must be in 1...\(options.experts - options.shared) (the routed experts), got \(options.top_k)")
        }
        guard let method = Method(rawValue: options.method) else {
            throw PassOptionError("method", "must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.method)'")
        }
        guard let sharedBy = SharedBy(rawValue: options.shared_by) else {
            throw PassOptionError("shared_by", "must be one of \(SharedBy.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.shared_by)'")
        }
        self.sharedBy = sharedBy
        guard let router = Router(rawValue: options.router) else {
            throw PassOptionError("router", "must be one of \(Router.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.router)'")
        }
        guard let weighting = MoEWeighting(rawValue: options.weighting) else {
            throw PassOptionError("weighting", "must be one of \(MoEWeighting.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.weighting)'")
        }
        guard !(router == .analytical && weighting == .softmax) else {
            throw PassOptionError("weighting", "softmax needs a linear router (centroid or fitted): the analytical router's scores are not logits")
        }
        if let w = options.router_windows, w < 1 { throw PassOptionError("router_windows", "must be at least 1, got \(w)") }
        (self.router, self.weighting, routerWindows) = (router, weighting, options.router_windows)
        guard options.windows >= 1 else { throw PassOptionError("windows", "must be at least 1, got \(options.windows)") }
        guard options.k_act >= 1 else { throw PassOptionError("k_act", "must be at least 1, got \(options.k_act)") }
        (experts, topK, shared, self.method, windows, perToken) = (options.experts, options.top_k, options.shared, method, options.windows, options.k_act)
    }

    /// The mixture's node name and parameter prefix.
    public static let node = LlamaBlock.mixtureNode

    /// Whether `block` has a dense SwiGLU MLP whose three linears the targets select.
    func carves(_ block: Block, context: BlockPassContext) -> Bool { context.selectsWholeMLP(block) }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        guard carves(block, context: context) else { return [] }
        return [ActivationMarkers(windows: windows, perToken: perToken)] + (sharedBy == .importance && shared > 0 ? [InputSquares(value: "act")] : [])
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        var report = PassReport(pass: Self.name, block: context.blockIndex)
        guard carves(block, context: context) else {
            report.notes.append("no dense SwiGLU MLP selected by the targets: left as it is")
            return report
        }
        let gate = block.parameters["mlp.gate.weight"]!, up = block.parameters["mlp.up.weight"]!, down = block.parameters["mlp.down.weight"]!
        let width = gate.shape[0]
        guard width % experts == 0 else {
            throw PassOptionError("experts", "block \(context.blockIndex)'s MLP has \(width) channels, not a multiple of \(experts) experts")
        }
        let size = width / experts
        let markers = try context.statistics.value(of: ActivationMarkers(windows: windows, perToken: perToken))
        let order = sharedBy == .importance && shared > 0 ? try Self.importanceOrder(down: down, activationNorms: context.statistics.inputNorms(of: "act")) : nil
        let partition: ExpertPartition
        switch method {
        case .cmoe: partition = .cmoe(markers: markers, experts: experts - shared, sharedChannels: shared * size, sharedOrder: order)
        case .cluster: partition = .cluster(markers: markers, experts: experts - shared, sharedChannels: shared * size, sharedOrder: order)
        case .cooccurrence: partition = .cooccurrence(markers: markers, experts: experts - shared, sharedChannels: shared * size, sharedOrder: order)
        case .random: partition = .random(markers: markers, experts: experts - shared, sharedChannels: shared * size,
                                          seed: context.seed ^ UInt64(context.blockIndex &* 0x9E37_79B9))
        }
        let moe = MoEOp(prefix: Self.node, experts: experts - shared, topK: topK, normalizeTopK: weighting == .softmax, hasSharedExpert: shared > 0,
                        router: router == .analytical ? .swiglu : .linear, weighting: weighting)
        let before = gate.count + up.count + down.count
        var parameters: [String: Tensor] = [:]
        for (e, channels) in partition.experts.enumerated() { Self.slice(gate, up, down, channels, into: &parameters, names: moe.expertNames(e)) }
        if shared > 0 { Self.slice(gate, up, down, partition.shared, into: &parameters, names: moe.expertNames(nil)) }

        let dense = block
        let input = block.node("mlp.gate")!.inputs[0]
        block = try LlamaBlock.replacingMLP(of: block, with: moe, parameters: parameters)

        switch router {
        case .analytical:
            parameters[moe.routerNames[0]] = BlockSlicing.gather(gate, rows: partition.representatives).unitRows()
            parameters[moe.routerNames[1]] = BlockSlicing.gather(up, rows: partition.representatives).unitRows()
        case .centroid, .fitted:
            let statistics = try routerStatistics(moe, carved: block, dense: dense, mlpInput: input, context: context)
            parameters[moe.routerNames[0]] = router == .fitted ? try statistics.fitted() : statistics.centroids()
            report.notes.append("\(router.rawValue) router learned from \(statistics.tokens) tokens")
        }
        for name in moe.routerNames { block.parameters[name] = parameters[name] }

        let after = parameters.values.reduce(0) { $0 + $1.count }
        report.metrics = ["experts": Double(experts - shared), "shared_channels": Double(partition.shared.count), "expert_channels": Double(size),
                          "active_ffn_share": Double(shared + topK) / Double(experts), "parameters_before": Double(before),
                          "parameters_after": Double(after), "router_parameters": Double(moe.routerNames.reduce(0) { $0 + parameters[$1]!.count })]
        report.notes.insert("\(method.rawValue)\(sharedBy == .importance && shared > 0 ? " (shared by importance)" : ""): \(shared) shared + top-\(topK) of \(experts - shared) routed experts of \(size) channels, \(router.rawValue) router, \(weighting.rawValue) weights", at: 0)
        return report
    }

    /// The statistics of the learned routers: the dense block's MLP inputs on the first `routerWindows` calibration
    /// windows (a few windows per forward) and every routed expert's output on them.
    func routerStatistics(_ moe: MoEOp, carved: Block, dense: Block, mlpInput value: String, context: BlockPassContext) throws -> RouterFit {
        let calibration = context.calibration
        let windows = min(routerWindows ?? calibration.windows, calibration.windows)
        guard windows > 0 else { throw PassOptionError("router", "the \(router.rawValue) router needs calibration windows; the pass got none") }
        var statistics = RouterFit(experts: moe.experts, topK: topK, hidden: calibration.inputs.shape[1])
        for start in stride(from: 0, to: windows, by: Self.windowsPerForward) {
            let range = start..<min(start + Self.windowsPerForward, windows)
            let result = try BlockExecutor.forward(dense, index: context.blockIndex, input: calibration.rows(calibration.inputs, windows: range),
                                                   context: ExecutionContext(batch: range.count, length: calibration.length),
                                                   capture: [value], computeOutput: false)
            let x = result.values[value]!
            statistics.add(x, expertOutputs: try (0..<moe.experts).map { try moe.expertOutput(x, expert: $0, parameters: carved) })
        }
        return statistics
    }

    /// The MLP's channels by their contribution to its output, ‖act_c‖₂ · ‖down[:, c]‖₂, largest first (ties: lower index).
    static func importanceOrder(down: Tensor, activationNorms: [Float]) -> [Int] {
        let width = down.shape[1]
        let columnSquares = down.columnSquaredNorms()
        let score = (0..<width).map { Double(activationNorms[$0]) * columnSquares[$0].squareRoot() }
        return Array(0..<width).sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
    }

    /// Calibration windows per forward while learning a router.
    static let windowsPerForward = 4

    /// An expert from the dense MLP's channels: gate and up rows, down columns.
    static func slice(_ gate: Tensor, _ up: Tensor, _ down: Tensor, _ channels: [Int], into parameters: inout [String: Tensor],
                      names: (gate: String, up: String, down: String)) {
        parameters[names.gate] = BlockSlicing.gather(gate, rows: channels)
        parameters[names.up] = BlockSlicing.gather(up, rows: channels)
        parameters[names.down] = BlockSlicing.gather(down, columns: channels)
    }
}
