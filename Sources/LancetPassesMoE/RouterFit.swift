import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// Linear routers learned from calibration tokens: for each token, which routed experts' outputs matter most.
///
/// The experts partition the dense MLP's channels, so the dense output is the shared expert's plus every routed
/// expert's, `y = y_s + Σ_e y_e`, and the routed part to approximate is `r = Σ_e y_e`. Running expert e alone
/// lowers the squared error of `y_s` by `b_e = 2⟨r, y_e⟩ − ‖y_e‖²`, its **benefit**; the best k experts of a token
/// are (up to the experts' overlaps) the k of largest benefit. From the benefits of every calibration token:
/// - `fitted`: the router `W` `[experts, hidden]` is the ridge least-squares regression of the benefits on the
///   token's MLP input x, `min ‖X Wᵀ − B‖² + λ‖W‖²` (λ = 10⁻³ · mean diag XᵀX), so the router's scores predict the
///   benefits and top-k of them picks the experts that matter most;
/// - `centroid`: row e is the mean MLP input of the tokens whose top-k benefits include e, scaled to unit length;
///   a token goes to the experts whose centroids it is most aligned with.
struct RouterFit {
    /// The statistics both routers are read from.
    private(set) var gram: Tensor           // XᵀX            [hidden, hidden]
    private(set) var cross: Tensor          // XᵀB            [hidden, experts]
    private(set) var centroidSums: Tensor   // Σ x per expert [experts, hidden]
    private(set) var tokens = 0
    let experts: Int
    let topK: Int

    /// Empty statistics for `experts` routed experts chosen `topK` at a time, on `hidden`-wide inputs.
    init(experts: Int, topK: Int, hidden: Int) {
        self.experts = experts
        self.topK = topK
        gram = Tensor(zeros: [hidden, hidden])
        cross = Tensor(zeros: [hidden, experts])
        centroidSums = Tensor(zeros: [experts, hidden])
    }

    /// Adds tokens `x` (MLP inputs, `[tokens, hidden]`) given the routed experts' outputs on them (each `[tokens, hidden]`).
    mutating func add(_ x: Tensor, expertOutputs y: [Tensor]) {
        let (t, h) = (x.shape[0], x.shape[1])
        var routed = Tensor(zeros: x.shape)
        for ye in y { routed = Elementwise.zip(routed, ye) { $0 + $1 } }
        var benefits = Tensor(zeros: [t, experts])
        benefits.withUnsafeMutableBufferPointer { b in routed.withUnsafeBufferPointer { r in
            for (e, ye) in y.enumerated() {
                ye.withUnsafeBufferPointer { yp in
                    for i in 0..<t {
                        let row = yp.baseAddress! + i * h
                        b[i * experts + e] = 2 * dot(r.baseAddress! + i * h, row, count: h) - dot(row, row, count: h)
                    }
                }
            }
        }}
        accumulateGram(x, into: &gram)
        cross.add(matmul(x, benefits, transposeA: true))
        centroidSums.withUnsafeMutableBufferPointer { c in x.withUnsafeBufferPointer { xp in benefits.withUnsafeBufferPointer { b in
            for i in 0..<t {
                for e in MoEOp.topIndices(b.baseAddress! + i * experts, count: experts, k: topK) { LancetTensor.add(c.baseAddress! + e * h, xp.baseAddress! + i * h, count: h, out: c.baseAddress! + e * h) }
            }
        }}}
        tokens += t
    }

    /// The least-squares router `[experts, hidden]`.
    func fitted() throws -> Tensor {
        let mean = gram.diagonalSum / Double(max(gram.shape[0], 1))
        return try solveSPD(gram.addingToDiagonal(max(1e-3 * mean, 1e-8)), cross).transposed()
    }

    /// The centroid router `[experts, hidden]` (an expert no token preferred keeps a zero row).
    func centroids() -> Tensor { ActivationMarkers.unitRows(centroidSums) }
}
