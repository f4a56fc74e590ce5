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

    /// The features `Z(x)`, `[tokens, Σ columnsᵢ]`, of an op whose output is exactly `Z·Wᵀ` (no offset).
    func readoutFeatures(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor

    /// `Z(x)` and `B(x)` (`[tokens, outputWidth]`, nil for none) of a call laid out as `context` says (`batch`
    /// sequences of `length` rows), computed together: for an op whose readout depends on the sequence a row belongs
    /// to (a choice made per prompt) or has an offset. Defaults to `readoutFeatures(x)` and no offset.
    func readout(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> (features: Tensor, offset: Tensor?)
}

extension LinearReadoutOp {
    public func readout(_ x: Tensor, parameters: ParameterLookup, context: ExecutionContext) throws -> (features: Tensor, offset: Tensor?) {
        (try readoutFeatures(x, parameters: parameters), nil)
    }
}
