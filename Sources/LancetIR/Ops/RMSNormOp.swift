import LancetTensor

/// `y = x / sqrt(mean(x²) + ε) · w`, row by row.
public struct RMSNormOp: Op {
    public static let kind = "rmsnorm"
    /// The scale parameter `[features]`.
    public var weight: String
    /// ε added to the mean square.
    public var epsilon: Float

    /// An RMS norm reading `weight`.
    public init(weight: String, epsilon: Float) {
        self.weight = weight
        self.epsilon = epsilon
    }

    public var parameterNames: [String] { [weight] }
    public var attributes: [String: OpAttribute] { ["eps": .double(Double("\(epsilon)")!), "weight": .string(weight)] }

    public init(attributes a: [String: OpAttribute]) throws {
        weight = try a.string("weight")
        epsilon = Float(try a.double("eps"))
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("rmsnorm takes 1 input, got \(inputs.count)") }
        let w = try parameters.require(weight)
        guard w.shape == [inputs[0]] else { throw OpShapeError("weight '\(weight)' has shape \(w.shape), input has \(inputs[0]) features") }
        return inputs
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let x = inputs[0], w = try parameters.require(weight)
        var y = Tensor(uninitializedShape: x.shape)
        let (rows, dim) = (x.shape[0], x.shape[1])
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let (source, scale, target) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
                    forEachPart(rows: rows, width: dim) { part in
                        rmsNorm(source + part.lowerBound * dim, weight: scale, rows: part.count, dim: dim, eps: epsilon,
                                out: target + part.lowerBound * dim)
                    }
                }
            }
        }
        return [y]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        let x = inputs[0], dy = outputGradients[0], w = try parameters.require(weight)
        let (rows, dim) = (x.shape[0], x.shape[1])
        var dx = Tensor(zeros: x.shape)
        var dw = Tensor(zeros: [dim])
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                w.withUnsafeBufferPointer { wp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        dw.withUnsafeMutableBufferPointer { dwp in
                            rmsNormBackward(xp.baseAddress!, weight: wp.baseAddress!, dy: gp.baseAddress!, rows: rows, dim: dim,
                                            eps: epsilon, dx: dxp.baseAddress!, dWeight: dwp.baseAddress!)
                        }
                    }
                }
            }
        }
        Linear.accumulate(&parameterGradients[weight], dw)
        return [dx]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        OpCost(flops: 4 * Double(tokens * inputs[0]), parameterBytes: 4 * Double(inputs[0]))
    }
}
