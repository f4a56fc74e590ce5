import LancetIR
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
///   calibration windows, `k_act` channels marked per token); `random` is the control.
/// - `router: analytical` is CMoE's: each routed expert is scored by the SwiGLU activation of its representative
///   channel, |(û·x)·silu(ĝ·x)| with the channel's up and gate rows scaled to unit length; the `top_k` highest scores
///   choose, and the chosen experts' outputs are added with weight 1 (the op's `swiglu` router, `unit` weighting).
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
        /// `cmoe` or `random`.
        public var method = "cmoe"
        /// `analytical`.
        public var router = "analytical"
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
        "method": "cmoe (activation-rate shared group, balanced clustering of activation patterns) or random (the control)",
        "router": "analytical (CMoE: the SwiGLU activation of each expert's representative channel; chosen experts weigh 1)",
        "windows": "calibration windows the carving reads (CMoE: 8)",
        "k_act": "channels marked active per token (CMoE: 10)",
    ]

    /// The carving.
    public enum Method: String, Sendable, CaseIterable { case cmoe, random }

    public let experts: Int
    public let topK: Int
    public let shared: Int
    public let method: Method
    public let windows: Int
    public let perToken: Int

    public init(options: Options) throws {
        guard options.experts >= 2 else { throw PassOptionError("experts", "must be at least 2, got \(options.experts)") }
        guard (0..<(options.experts - 1)).contains(options.shared) else {
            throw PassOptionError("shared", "must leave at least two routed experts: 0...\(options.experts - 2), got \(options.shared)")
        }
        guard (1...(options.experts - options.shared)).contains(options.top_k) else {
            throw PassOptionError("top_k", "must be in 1...\(options.experts - options.shared) (the routed experts), got \(options.top_k)")
        }
        guard let method = Method(rawValue: options.method) else {
            throw PassOptionError("method", "must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got '\(options.method)'")
        }
        guard options.router == "analytical" else { throw PassOptionError("router", "must be analytical, got '\(options.router)'") }
        guard options.windows >= 1 else { throw PassOptionError("windows", "must be at least 1, got \(options.windows)") }
        guard options.k_act >= 1 else { throw PassOptionError("k_act", "must be at least 1, got \(options.k_act)") }
        (experts, topK, shared, self.method, windows, perToken) = (options.experts, options.top_k, options.shared, method, options.windows, options.k_act)
    }

    /// The MLP's linears, as the targets must select them all.
    static let mlpLinears = ["mlp.gate", "mlp.up", "mlp.down"]
    /// The dense MLP's nodes the mixture replaces.
    static let mlpNodes = ["mlp.gate", "mlp.up", "mlp.act", "mlp.mul", "mlp.down"]
    /// The mixture's node name and parameter prefix.
    public static let node = "mlp.moe"

    /// Whether `block` has a dense SwiGLU MLP whose three linears the targets select.
    func carves(_ block: Block, context: BlockPassContext) -> Bool {
        let selected = Set(context.linears(in: block).map(\.node.name))
        return Self.mlpLinears.allSatisfy { selected.contains($0) && (block.node($0)?.op as? LinearOp)?.weight != nil }
            && block.node("mlp.act")?.op is SiLUOp && block.node("mlp.mul")?.op is MulOp
    }

    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] {
        carves(block, context: context) ? [ActivationMarkers(windows: windows, perToken: perToken)] : []
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
        let partition: ExpertPartition
        switch method {
        case .cmoe: partition = .cmoe(markers: markers, experts: experts - shared, sharedChannels: shared * size)
        case .random: partition = .random(markers: markers, experts: experts - shared, sharedChannels: shared * size,
                                          seed: context.seed ^ UInt64(context.blockIndex &* 0x9E37_79B9))
        }
        let moe = MoEOp(prefix: Self.node, experts: experts - shared, topK: topK, normalizeTopK: false, hasSharedExpert: shared > 0,
                        router: .swiglu, weighting: .unit)
        let before = gate.count + up.count + down.count
        var parameters: [String: Tensor] = [
            moe.routerNames[0]: ActivationMarkers.unitRows(BlockSlicing.gather(gate, rows: partition.representatives)),
            moe.routerNames[1]: ActivationMarkers.unitRows(BlockSlicing.gather(up, rows: partition.representatives)),
        ]
        for (e, channels) in partition.experts.enumerated() { Self.slice(gate, up, down, channels, into: &parameters, names: moe.expertNames(e)) }
        if shared > 0 { Self.slice(gate, up, down, partition.shared, into: &parameters, names: moe.expertNames(nil)) }

        let at = block.nodeIndex("mlp.gate")!
        let input = block.nodes[at].inputs[0], output = block.node("mlp.down")!.outputs[0]
        block.nodes.removeAll { Self.mlpNodes.contains($0.name) }
        block.nodes.insert(Node(Self.node, moe, inputs: [input], outputs: [output]), at: at)
        for name in Self.mlpLinears.map({ $0 + ".weight" }) { block.parameters[name] = nil; block.masks[name] = nil }
        block.parameters.merge(parameters) { $1 }

        let after = parameters.values.reduce(0) { $0 + $1.count }
        report.metrics = ["experts": Double(experts - shared), "shared_channels": Double(partition.shared.count), "expert_channels": Double(size),
                          "active_ffn_share": Double(shared + topK) / Double(experts), "parameters_before": Double(before),
                          "parameters_after": Double(after), "router_parameters": Double(moe.routerNames.reduce(0) { $0 + parameters[$1]!.count })]
        report.notes.append("\(method.rawValue): \(shared) shared + top-\(topK) of \(experts - shared) routed experts of \(size) channels")
        return report
    }

    /// An expert from the dense MLP's channels: gate and up rows, down columns.
    static func slice(_ gate: Tensor, _ up: Tensor, _ down: Tensor, _ channels: [Int], into parameters: inout [String: Tensor],
                      names: (gate: String, up: String, down: String)) {
        parameters[names.gate] = BlockSlicing.gather(gate, rows: channels)
        parameters[names.up] = BlockSlicing.gather(up, rows: channels)
        parameters[names.down] = BlockSlicing.gather(down, columns: channels)
    }
}
