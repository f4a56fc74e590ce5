import LancetTensor

/// An op whose output, for a fixed input, is affine in some of its parameters: `output = Z(x)·Wᵀ + B(x)`, with
/// `W = [W₁ | W₂ | …]` those parameters (each `[outputWidth, columnsᵢ]`) side by side and the features `Z(x)`
/// set by the op's other parameters, and `B(x)` the part of the output those parameters do not touch (none by default).
/// The pipeline's least-squares fit (`fit: lstsq`) refits W in closed form for
/// such an op as it refits a linear's weight: a mixture's down projections, given its router and its experts'
/// gate and up projections.
public protocol LinearReadoutOp: Op {
    /// The parameters the output is linear in, in the order their columns are laid side by side.
    var readoutParameters: [String] { get }

    /// The features `Z(x)`, `[tokens, Σ columnsᵢ]`, such that the op's output is exactly `Z·Wᵀ`.
    func readoutFeatures(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor

    /// The features of a call laid out as `context` says (`batch` sequences of `length` rows): for an op whose
    /// features depend on the sequence a row belongs to (a choice made per prompt). Defaults to the features of `x`.
    func readoutFeatures(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> Tensor

    /// `B(x)`, the part of the output not linear in the readout parameters (`[tokens, outputWidth]`), or nil for none.
    func readoutOffset(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> Tensor?
}

extension LinearReadoutOp {
    public func readoutFeatures(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> Tensor {
        try readoutFeatures(x, parameters: parameters)
    }

    public func readoutOffset(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> Tensor? { nil }
}
