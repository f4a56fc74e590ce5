import Foundation
import LancetTensor

/// Fits a `ChannelPredictor` of one block on calibration prompts: for each prompt, every channel's contribution over
/// the prompt (the feature, `f`) and over the tokens after it (the target, `y`), both `ChannelContribution.rms`.
/// No gradient flows through the model: the predictor learns from these pairs alone.
public struct ChannelPredictorFit {
    /// Features of every prompt, `[prompts][width]`.
    public private(set) var features: [[Double]] = []
    /// Targets of every prompt, `[prompts][width]`.
    public private(set) var targets: [[Double]] = []

    /// An empty fit.
    public init() {}

    /// Adds one prompt's features and its continuation's targets.
    public mutating func add(features f: [Double], targets y: [Double]) {
        precondition(f.count == y.count, "ChannelPredictorFit: \(f.count) features against \(y.count) targets")
        features.append(f)
        targets.append(y)
    }

    /// The fitted parameters (by name under `prefix`) and the predictor's training loss before and after the fit.
    public struct Outcome {
        /// The predictor's parameters.
        public var parameters: [String: Tensor]
        /// The loss the fit minimises, at its starting point (`linear`: the `prompt` predictor; `mlp`: its
        /// initialisation) and at the end.
        public var lossBefore: Double, lossAfter: Double
    }

    /// Fits `predictor` (`linear` or `mlp`; the others have no parameters). `ridge` shrinks each channel's slope
    /// (`linear`); `steps` of Adam train the `mlp`, initialised from `seed`.
    public func fit(_ predictor: ChannelPredictor, prefix: String, ridge: Double = 0.1, steps: Int = 400, seed: UInt64 = 0) -> Outcome {
        switch predictor {
        case .prompt, .oracle:
            return Outcome(parameters: [:], lossBefore: 0, lossAfter: 0)
        case .linear:
            return fitLinear(prefix: prefix, ridge: ridge)
        case let .mlp(hidden):
            return fitMLP(prefix: prefix, hidden: hidden, steps: steps, seed: seed)
        }
    }

    /// Per channel, ridge regression of the target on the feature: slope = cov / (var · (1 + ridge)), the line
    /// through the means. Loss: mean squared error over every prompt and channel, relative to the targets' mean square.
    func fitLinear(prefix: String, ridge: Double) -> Outcome {
        let n = Double(features.count), width = features.first?.count ?? 0
        var weights = [Float](repeating: 0, count: 2 * width)
        var before = 0.0, after = 0.0, energy = 0.0
        for c in 0..<width {
            let f = features.map { $0[c] }, y = targets.map { $0[c] }
            let fm = f.reduce(0, +) / n, ym = y.reduce(0, +) / n
            var cov = 0.0, variance = 0.0
            for i in f.indices { cov += (f[i] - fm) * (y[i] - ym); variance += (f[i] - fm) * (f[i] - fm) }
            let slope = variance > 0 ? cov / (variance * (1 + ridge)) : 0
            let intercept = ym - slope * fm
            weights[2 * c] = Float(slope)
            weights[2 * c + 1] = Float(intercept)
            for i in f.indices {
                before += (f[i] - y[i]) * (f[i] - y[i])
                let p = Double(weights[2 * c]) * f[i] + Double(weights[2 * c + 1])
                after += (p - y[i]) * (p - y[i])
                energy += y[i] * y[i]
            }
        }
        let scale = energy > 0 ? energy : 1
        return Outcome(parameters: [prefix + ".predictor.weight": Tensor(shape: [width, 2], weights)], lossBefore: before / scale, lossAfter: after / scale)
    }

    /// A shared tanh network over (standardised log feature, channel's standardised mean log target) regressing the
    /// standardised log target, full-batch Adam. Loss: mean squared error of the standardised log target.
    func fitMLP(prefix: String, hidden: Int, steps: Int, seed: UInt64) -> Outcome {
        let width = features.first?.count ?? 0, prompts = features.count
        let meanFeature = features.joined().reduce(0, +) / Double(max(prompts * width, 1))
        let epsilon = max(1e-3 * meanFeature, 1e-12)
        func standardised(_ v: [Double]) -> (values: [Double], mean: Double, deviation: Double) {
            let mean = v.reduce(0, +) / Double(max(v.count, 1))
            let deviation = max((v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(v.count, 1))).squareRoot(), 1e-12)
            return (v.map { ($0 - mean) / deviation }, mean, deviation)
        }
        let logFeatures = standardised(features.joined().map { Foundation.log($0 + epsilon) })
        let logTargets = standardised(targets.joined().map { Foundation.log($0 + epsilon) })
        // Each channel's mean standardised log target over the prompts, standardised over channels.
        var channelMean = [Double](repeating: 0, count: width)
        for i in 0..<prompts { for c in 0..<width { channelMean[c] += logTargets.values[i * width + c] / Double(prompts) } }
        let staticInput = standardised(channelMean).values

        var generator = SeededGenerator(seed: seed)
        var w1 = (0..<(2 * hidden)).map { _ in Double(generator.nextNormal()) }
        var b1 = (0..<hidden).map { _ in Double(generator.nextNormal()) * 0.5 }
        var w2 = (0..<hidden).map { _ in Double(generator.nextNormal()) / Double(hidden).squareRoot() }
        var b2 = 0.0
        let count = Double(prompts * width)

        func lossAndGradients(_ withGradients: Bool) -> (loss: Double, w1: [Double], b1: [Double], w2: [Double], b2: Double) {
            var loss = 0.0
            var g1 = [Double](repeating: 0, count: 2 * hidden), gb1 = [Double](repeating: 0, count: hidden)
            var g2 = [Double](repeating: 0, count: hidden), gb2 = 0.0
            var t = [Double](repeating: 0, count: hidden)
            for i in 0..<prompts {
                for c in 0..<width {
                    let z0 = logFeatures.values[i * width + c], z1 = staticInput[c]
                    var out = b2
                    for j in 0..<hidden { t[j] = tanh(w1[2 * j] * z0 + w1[2 * j + 1] * z1 + b1[j]); out += w2[j] * t[j] }
                    let r = out - logTargets.values[i * width + c]
                    loss += r * r
                    guard withGradients else { continue }
                    let d = 2 * r / count
                    gb2 += d
                    for j in 0..<hidden {
                        g2[j] += d * t[j]
                        let dh = d * w2[j] * (1 - t[j] * t[j])
                        g1[2 * j] += dh * z0
                        g1[2 * j + 1] += dh * z1
                        gb1[j] += dh
                    }
                }
            }
            return (loss / count, g1, gb1, g2, gb2)
        }

        let before = lossAndGradients(false).loss
        var adam = AdamState(count: 4 * hidden + 1)
        for _ in 0..<steps {
            let g = lossAndGradients(true)
            var parameters = w1 + b1 + w2 + [b2]
            adam.step(&parameters, gradients: g.w1 + g.b1 + g.w2 + [g.b2], rate: 0.02)
            w1 = Array(parameters[0..<(2 * hidden)])
            b1 = Array(parameters[(2 * hidden)..<(3 * hidden)])
            w2 = Array(parameters[(3 * hidden)..<(4 * hidden)])
            b2 = parameters[4 * hidden]
        }
        let after = lossAndGradients(false).loss
        let names = ChannelPredictor.mlp(hidden: hidden).parameterNames(prefix: prefix)
        let values: [[Double]] = [staticInput, [epsilon, logFeatures.mean, logFeatures.deviation], w1, b1, w2]
        let shapes = ChannelPredictor.mlp(hidden: hidden).shapes(width: width)
        var parameters: [String: Tensor] = [:]
        for (name, (v, shape)) in zip(names, zip(values, shapes)) { parameters[name] = Tensor(shape: shape, v.map(Float.init)) }
        return Outcome(parameters: parameters, lossBefore: before, lossAfter: after)
    }
}

/// Adam's moment estimates for a flat parameter vector (β₁ 0.9, β₂ 0.999, ε 1e-8).
struct AdamState {
    var m: [Double], v: [Double], t = 0
    init(count: Int) { m = Array(repeating: 0, count: count); v = m }

    mutating func step(_ parameters: inout [Double], gradients: [Double], rate: Double) {
        t += 1
        let c1 = 1 - pow(0.9, Double(t)), c2 = 1 - pow(0.999, Double(t))
        for i in parameters.indices {
            m[i] = 0.9 * m[i] + 0.1 * gradients[i]
            v[i] = 0.999 * v[i] + 0.001 * gradients[i] * gradients[i]
            parameters[i] -= rate * (m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-8)
        }
    }
}
