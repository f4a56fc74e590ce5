import Foundation
import LancetIR
import LancetTensor

/// How a `dynamic-ffn` scores its channels from a prompt. Every predictor reads the same per-channel feature: the
/// channel's contribution over the prompt (`ChannelContribution.rms`, which the prefill's full FFN computes anyway).
///
/// - `prompt`: the feature itself (no parameters): keep the channels that contributed most to the prompt.
/// - `linear`: a per-channel line fitted on calibration prompts, `slope_c · f_c + intercept_c`
///   (`p.predictor.weight` `[width, 2]`): the intercept carries the channel's typical contribution, the slope how much
///   the prompt tells about its continuation.
/// - `mlp`: one small network per block, shared by its channels, over two inputs per channel: the standardised
///   log of the prompt's feature and the channel's standardised typical log contribution on calibration text
///   (`p.predictor.static` `[width]`); `hidden` tanh units (`p.predictor.input` `[3]`: ε, mean and deviation of the
///   log feature; `p.predictor.w1` `[hidden, 2]`, `p.predictor.b1` `[hidden]`, `p.predictor.w2` `[hidden]`).
/// - `oracle`: the feature over the tokens after the prompt: the choice the continuation itself would make.
public enum ChannelPredictor: Sendable, Equatable {
    case prompt
    case linear
    case mlp(hidden: Int)
    case oracle

    /// The predictor's name in recipes and attributes.
    public var name: String {
        switch self {
        case .prompt: "prompt"
        case .linear: "linear"
        case .mlp: "mlp"
        case .oracle: "oracle"
        }
    }

    /// The accepted names.
    public static let names = ["prompt", "linear", "mlp", "oracle"]

    /// The predictor `name` (`hidden` units for `mlp`), or nil for an unknown name.
    public init?(name: String, hidden: Int) {
        switch name {
        case "prompt": self = .prompt
        case "linear": self = .linear
        case "mlp": self = .mlp(hidden: hidden)
        case "oracle": self = .oracle
        default: return nil
        }
    }

    init(attributes a: [String: OpAttribute]) throws {
        let name = try a.string("predictor")
        let hidden = a["hidden"]?.int ?? 0
        guard let p = ChannelPredictor(name: name, hidden: hidden) else {
            throw OpShapeError("dynamic-ffn predictor '\(name)' is not one of \(Self.names.joined(separator: ", "))")
        }
        if case .mlp = p, hidden < 1 { throw OpShapeError("dynamic-ffn: an mlp predictor needs hidden ≥ 1, got \(hidden)") }
        self = p
    }

    var attributes: [String: OpAttribute] {
        if case let .mlp(hidden) = self { return ["predictor": .string(name), "hidden": .int(hidden)] }
        return ["predictor": .string(name)]
    }

    /// The predictor's parameter names under `prefix`.
    public func parameterNames(prefix: String) -> [String] {
        switch self {
        case .prompt, .oracle: []
        case .linear: [prefix + ".predictor.weight"]
        case .mlp: ["static", "input", "w1", "b1", "w2"].map { prefix + ".predictor." + $0 }
        }
    }

    /// The shapes the parameters must have for an FFN of `width` channels.
    func shapes(width: Int) -> [[Int]] {
        switch self {
        case .prompt, .oracle: []
        case .linear: [[width, 2]]
        case let .mlp(hidden): [[width], [3], [hidden, 2], [hidden], [hidden]]
        }
    }

    func check(width: Int, prefix: String, parameters: ParameterLookup) throws {
        for (name, shape) in zip(parameterNames(prefix: prefix), shapes(width: width)) {
            let t = try parameters.require(name)
            guard t.shape == shape else { throw OpShapeError("dynamic-ffn predictor '\(name)' has shape \(t.shape), expected \(shape)") }
        }
    }

    /// Every channel's score from its feature `f` (higher: keep).
    public func scores(_ f: [Double], prefix: String, parameters: ParameterLookup) throws -> [Double] {
        let p = try parameterNames(prefix: prefix).map { try parameters.require($0).scalars.map(Double.init) }
        switch self {
        case .prompt, .oracle:
            return f
        case .linear:
            return f.indices.map { p[0][2 * $0] * f[$0] + p[0][2 * $0 + 1] }
        case let .mlp(hidden):
            let (staticInput, input, w1, b1, w2) = (p[0], p[1], p[2], p[3], p[4])
            return f.indices.map { c in
                let z0 = (Foundation.log(f[c] + input[0]) - input[1]) / input[2], z1 = staticInput[c]
                var s = 0.0
                for j in 0..<hidden { s += w2[j] * tanh(w1[2 * j] * z0 + w1[2 * j + 1] * z1 + b1[j]) }
                return s
            }
        }
    }
}
