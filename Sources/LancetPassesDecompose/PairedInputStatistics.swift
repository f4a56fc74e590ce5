import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// The statistics of a least-squares refit of a linear inside a block that was already partly changed: the Gram
/// G' = X'ᵀX' of the linear's inputs X' in the changed block and the cross term C = X'ᵀX with its inputs X in the
/// dense block, both on the same block inputs, measured a few windows per forward call.
///
/// With them, min ‖X Wᵀ − X' W'ᵀ‖² (the changed layer against the dense one) has the solution W* = W Cᵀ G'⁻¹, and for
/// a low-rank W' = B·A with A fixed, B = W Cᵀ Aᵀ (A G' Aᵀ)⁻¹.
struct PairedInputStatistics {
    /// X'ᵀX'.
    var gram: Tensor
    /// X'ᵀX.
    var cross: Tensor

    /// Measures the value `value` of `dense` and `changed` on `inputs` (`[windows·length, hidden]`).
    init(of value: String, dense: Block, changed: Block, index: Int, inputs: Tensor, length: Int, windowsPerCall: Int) throws {
        let windows = inputs.shape[0] / max(length, 1)
        var gram: Tensor?, cross: Tensor?
        var w = 0
        while w < windows {
            let range = w..<min(w + max(1, windowsPerCall), windows)
            let chunk = inputs.slicingRows((range.lowerBound * length)..<(range.upperBound * length))
            func run(_ b: Block) throws -> Tensor {
                try BlockExecutor.forward(b, index: index, input: chunk, context: ExecutionContext(batch: range.count, length: length),
                                          capture: [value], computeOutput: false).values[value]!
            }
            let x = try run(dense), xc = try run(changed)
            if gram == nil { gram = Tensor(zeros: [xc.shape[1], xc.shape[1]]) }
            accumulateGram(xc, into: &gram!)
            Linear.accumulate(&cross, matmul(xc, x, transposeA: true))
            w = range.upperBound
        }
        guard let gram, let cross else { throw PassOptionError("calibration", "no calibration windows to measure '\(value)' on") }
        self.gram = gram
        self.cross = cross
    }

    /// `g` with `damping` × its mean diagonal added to the diagonal.
    static func ridge(_ g: Tensor, damping: Double) -> Tensor {
        let n = g.shape[0]
        var r = g
        let mean = g.withUnsafeBufferPointer { p in (0..<n).reduce(0.0) { $0 + Double(p[$1 * n + $1]) } } / Double(max(n, 1))
        let lambda = Float(max(damping * mean, 1e-12))
        r.withUnsafeMutableBufferPointer { p in for i in 0..<n { p[i * n + i] += lambda } }
        return r
    }

    /// The least-squares weight W* = W·Cᵀ·(G' + λI)⁻¹ of the dense weight `w`.
    func leastSquaresWeight(_ w: Tensor, damping: Double) throws -> Tensor {
        try solveSPD(Self.ridge(gram, damping: damping), matmul(cross, w, transposeB: true)).transposed()
    }

    /// The outer factor B = W·Cᵀ·Aᵀ·(A·G'·Aᵀ + λI)⁻¹ given the inner factor `a`.
    func outerFactor(dense w: Tensor, inner a: Tensor, damping: Double) throws -> Tensor {
        let g = matmul(matmul(a, gram), a, transposeB: true)                  // A·G'·Aᵀ  [r, r]
        let rhs = matmul(a, matmul(cross, w, transposeB: true))               // A·C·Wᵀ   [r, out]
        return try solveSPD(Self.ridge(g, damping: damping), rhs).transposed()
    }
}
