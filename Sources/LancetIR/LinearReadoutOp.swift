import LancetTensor

/// An op whose output, for a fixed input, is linear in some of its parameters: `output = Z(x)·Wᵀ`, with
/// `W = [W₁ | W₂ | …]` those parameters (each `[outputWidth, columnsᵢ]`) side by side and the features `Z(x)`
/// set by the op's other parameters. The pipeline's least-squares fit (`fit: lstsq`) refits W in closed form for
/// such an op as it refits a linear's weight: a mixture's down projections, given its router and its experts'
/// gate and up projections.
public protocol LinearReadoutOp: Op {
    /// The parameters the output is linear in, in the order their columns are laid side by side.
    var readoutParameters: [String] { get }

    /// The features `Z(x)`, `[tokens, Σ columnsᵢ]`, such that the op's output is exactly `Z·Wᵀ`.
    func readoutFeatures(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor
}
