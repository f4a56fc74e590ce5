import LancetTensor

/// Rotary position embedding of each head of `[tokens, heads·headDim]`, at the rows' absolute positions.
public struct RopeOp: Op {
    public static let kind = "rope"
    /// Number of heads in the input.
    public var heads: Int
    /// Size of each head.
    public var headDimensions: Int
    /// Frequencies, rotated dimensions and pairing.
    public var config: RopeConfig

    /// Creates the op.
    public init(heads: Int, headDimensions: Int, config: RopeConfig) {
        self.heads = heads
        self.headDimensions = headDimensions
        self.config = config
    }

    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] {
        var a: [String: OpAttribute] = [
            "heads": .int(heads), "head_dim": .int(headDimensions), "theta": .double(config.theta),
            "rotary_dim": .int(config.rotaryDimensions), "pairing": .string(config.pairing == .adjacent ? "adjacent" : "halves"),
        ]
        switch config.scaling {
        case .none: break
        case let .linear(f): a["scaling"] = .string("linear"); a["factor"] = .double(f)
        case let .llama3(f, lo, hi, orig):
            a["scaling"] = .string("llama3"); a["factor"] = .double(f)
            a["low_freq_factor"] = .double(lo); a["high_freq_factor"] = .double(hi); a["original_context"] = .int(orig)
        case let .frequencyFactors(f): a["scaling"] = .string("factors"); a["factors"] = .doubles(f.map(Double.init))
        }
        return a
    }

    public init(attributes a: [String: OpAttribute]) throws {
        heads = try a.int("heads")
        headDimensions = try a.int("head_dim")
        let pairingName = try a.string("pairing")
        guard let pairing: RopePairing = pairingName == "adjacent" ? .adjacent : pairingName == "halves" ? .halves : nil else {
            throw OpShapeError("attribute 'pairing' must be 'adjacent' or 'halves', got '\(pairingName)'")
        }
        var scaling = RopeConfig.Scaling.none
        switch a["scaling"]?.string {
        case nil: break
        case "linear": scaling = .linear(factor: try a.double("factor"))
        case "llama3":
            scaling = .llama3(factor: try a.double("factor"), lowFrequencyFactor: try a.double("low_freq_factor"),
                              highFrequencyFactor: try a.double("high_freq_factor"), originalContext: try a.int("original_context"))
        case "factors":
            guard let f = a["factors"]?.doubles else { throw OpShapeError("attribute 'factors' must be a list of numbers") }
            scaling = .frequencyFactors(f.map(Float.init))
        case let other?: throw OpShapeError("attribute 'scaling' '\(other)' is not known (none, linear, llama3, factors)")
        }
        config = RopeConfig(theta: try a.double("theta"), rotaryDimensions: try a.int("rotary_dim"), pairing: pairing, scaling: scaling)
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("rope takes 1 input, got \(inputs.count)") }
        guard inputs[0] == heads * headDimensions else {
            throw OpShapeError("input has \(inputs[0]) features, expected heads \(heads) × head_dim \(headDimensions)")
        }
        guard config.rotaryDimensions <= headDimensions, config.rotaryDimensions % 2 == 0 else {
            throw OpShapeError("rotary_dim \(config.rotaryDimensions) must be even and at most head_dim \(headDimensions)")
        }
        if case let .frequencyFactors(f) = config.scaling, f.count != config.rotaryDimensions / 2 {
            throw OpShapeError("\(f.count) frequency factors for rotary_dim \(config.rotaryDimensions)")
        }
        return inputs
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        [rotate(inputs[0], context: context, inverse: false)]
    }

    /// The VJP of a rotation is the inverse rotation of the gradient.
    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        [rotate(outputGradients[0], context: context, inverse: true)]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        OpCost(flops: 3 * Double(tokens * inputs[0]))
    }

    private func rotate(_ x: Tensor, context: ExecutionContext, inverse: Bool) -> Tensor {
        var y = x
        let frequencies = config.inverseFrequencies
        var positions = [Int32]()
        positions.reserveCapacity(context.tokens)
        for _ in 0..<context.batch { positions.append(contentsOf: context.positions) }
        y.withUnsafeMutableBufferPointer { yp in
            positions.withUnsafeBufferPointer { pp in
                frequencies.withUnsafeBufferPointer { fp in
                    let (values, at, stride) = (yp.baseAddress!, pp.baseAddress!, heads * headDimensions)
                    forEachPart(rows: positions.count, width: stride) { part in
                        rope(x: values + part.lowerBound * stride, tokens: part.count, heads: heads, headDim: headDimensions, rowStride: stride,
                             positions: at + part.lowerBound, inverseFrequencies: fp.baseAddress!, rotaryDim: config.rotaryDimensions,
                             pairing: config.pairing, inverse: inverse)
                    }
                }
            }
        }
        return y
    }
}
