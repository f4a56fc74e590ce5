import LancetIR
import LancetTensor

/// Linear routers learned from calibration tokens: for each token, which routed experts' outputs matter most.
///
/// A mixture's output is the unrouted part `u` (a shared expert's) plus its chosen experts' outputs; against a target
/// `y` (the dense MLP's output), the part the routed experts have to supply is the **residual** `r = y − u`. Running
/// expert e alone lowers the squared error `‖r‖²` by `b_e = 2⟨r, y_e⟩ − ‖y_e‖²`, its **benefit** to the token; the
/// best k experts of a token are (up to the experts' overlaps) the k of largest benefit. When the experts partition
/// the dense MLP's channels, `r = Σ_e y_e` (what `moefy` learns its router from); after the experts' down projections
/// are refitted, `r = y − u` with the refitted experts (what `fit: lstsq` refits the router from). From the benefits
/// of every calibration token:
/// - `fitted`: the router `W` `[experts, hidden]` is the ridge least-squares regression of the benefits on the
///   token's input x, `min ‖X Wᵀ − B‖² + λ‖W‖²` (λ = 10⁻³ · mean diag XᵀX), so the router's scores predict the
///   benefits and top-k of them picks the experts that matter most;
/// - `centroid`: row e is the mean input of the tokens whose top-k benefits include e, scaled to unit length;
///   a token goes to the experts whose centroids it is most aligned with.
public struct RouterFit: Sendable {
    /// The statistics both routers are read from.
    private(set) var gram: Tensor           // XᵀX            [hidden, hidden]
    private(set) var cross: Tensor          // XᵀB            [hidden, experts]
    private(set) var centroidSums: Tensor   // Σ x per expert [experts, hidden]
    /// Tokens added.
    public private(set) var tokens = 0
    /// Routed experts.
    public let experts: Int
    /// Experts each token runs.
    public let topK: Int

    /// Empty statistics for `experts` routed experts chosen `topK` at a time, on `hidden`-wide inputs.
    public init(experts: Int, topK: Int, hidden: Int) {
        self.experts = experts
        self.topK = topK
        gram = Tensor(zeros: [hidden, hidden])
        cross = Tensor(zeros: [hidden, experts])
        centroidSums = Tensor(zeros: [experts, hidden])
    }

    /// Adds tokens `x` (`[tokens, hidden]`) given the residual `r` the routed experts have to supply and the routed
    /// experts' outputs on them (each `[tokens, hidden]`).
    public mutating func add(_ x: Tensor, residual r: Tensor, expertOutputs y: [Tensor]) {
        let (t, h) = (x.shape[0], x.shape[1])
        precondition(y.count == experts && r.shape == [t, h], "RouterFit.add: \(y.count) outputs for \(experts) experts, residual \(r.shape)")
        var benefits = Tensor(zeros: [t, experts])
        benefits.withUnsafeMutableBufferPointer { b in r.withUnsafeBufferPointer { rp in
            for (e, ye) in y.enumerated() {
                ye.withUnsafeBufferPointer { yp in
                    for i in 0..<t {
                        let row = yp.baseAddress! + i * h
                        b[i * experts + e] = 2 * dot(rp.baseAddress! + i * h, row, count: h) - dot(row, row, count: h)
                    }
                }
            }
        }}
        accumulateGram(x, into: &gram)
        cross.add(matmul(x, benefits, transposeA: true))
        centroidSums.withUnsafeMutableBufferPointer { c in x.withUnsafeBufferPointer { xp in benefits.withUnsafeBufferPointer { b in
            for i in 0..<t {
                for e in MoEOp.topIndices(b.baseAddress! + i * experts, count: experts, k: topK) {
                    LancetTensor.add(c.baseAddress! + e * h, xp.baseAddress! + i * h, count: h, out: c.baseAddress! + e * h)
                }
            }
        }}}
        tokens += t
    }

    /// Adds tokens `x` when the routed experts partition the target: the residual is the sum of their outputs.
    public mutating func add(_ x: Tensor, expertOutputs y: [Tensor]) {
        var routed = Tensor(zeros: x.shape)
        for ye in y { routed.add(ye) }
        add(x, residual: routed, expertOutputs: y)
    }

    /// The least-squares router `[experts, hidden]`.
    public func fitted() throws -> Tensor {
        try solveSPD(gram.addingToDiagonal(max(1e-3 * gram.diagonalSum / Double(max(gram.shape[0], 1)), 1e-8)), cross).transposed()
    }

    /// The centroid router `[experts, hidden]` (an expert no token preferred keeps a zero row).
    public func centroids() -> Tensor { centroidSums.unitRows() }
}
