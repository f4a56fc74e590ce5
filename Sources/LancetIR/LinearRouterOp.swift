import LancetTensor

/// An op that sends each token to the `routedTopK` of its `routedExperts` routed experts that a linear router scores
/// highest (`scores = x·Rᵀ`), on top of an output every token gets (a shared expert's, or none). The pipeline's
/// least-squares fit (`fit: lstsq`) refits such a router from what each expert would add to each calibration token
/// (`RouterFit`), after refitting the op's readout.
public protocol LinearRouterOp: Op {
    /// The router's weight `[routedExperts, input width]`, or nil when the op's router is not linear (nothing to refit).
    var linearRouterParameter: String? { get }
    /// Routed experts the router chooses from.
    var routedExperts: Int { get }
    /// Routed experts each token runs.
    var routedTopK: Int { get }
    /// Routed expert `expert`'s output on every token of `x`, as if chosen with weight 1.
    func routedOutput(_ x: Tensor, expert: Int, parameters: ParameterLookup) throws -> Tensor
    /// The output every token gets whatever the router chooses (a shared expert's), or nil when there is none.
    func unroutedOutput(_ x: Tensor, parameters: ParameterLookup) throws -> Tensor?
}
