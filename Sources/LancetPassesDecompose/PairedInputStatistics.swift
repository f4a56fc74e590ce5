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
///
/// For a linear that writes into a residual sum `y = r + linear(x)`, the target can also carry the drift of the
/// residual: min ‖(X Wᵀ + r − r') − X' W'ᵀ‖² makes the changed block's sum y' match the dense block's y, so the
/// writer absorbs the error of the sub-layer before it. `residuals` names those residual values; their drift term
/// X'ᵀ(r − r') is kept per residual (`drift`).
struct PairedInputStatistics {
    /// X'ᵀX'.
    var gram: Tensor
    /// X'ᵀX.
    var cross: Tensor
    /// X'ᵀ(r − r') per residual value r.
    var drift: [String: Tensor] = [:]

    /// The values of the dense block on the calibration inputs, captured once, call by call, for several rounds of
    /// paired statistics (each round then runs only the changed block).
    struct DenseValues {
        /// Each call's window range and captured values.
        var calls: [(windows: Range<Int>, values: [String: Tensor])]
        /// Tokens per window.
        var length: Int

        /// Captures `values` of `dense` on `inputs` (`[windows·length, hidden]`), `windowsPerCall` windows per call.
        init(_ values: Set<String>, of dense: Block, index: Int, inputs: Tensor, length: Int, windowsPerCall: Int) throws {
            self.length = length
            calls = []
            let windows = inputs.shape[0] / max(length, 1)
            var w = 0
            while w < windows {
                let range = w..<min(w + max(1, windowsPerCall), windows)
                let chunk = inputs.slicingRows((range.lowerBound * length)..<(range.upperBound * length))
                calls.append((range, try BlockExecutor.forward(dense, index: index, input: chunk,
                                                               context: ExecutionContext(batch: range.count, length: length),
                                                               capture: values, computeOutput: false).values))
                w = range.upperBound
            }
        }
    }

    /// Measures the value `value` of `changed` on `inputs` against the dense block's captured `dense` values, and the
    /// drift of each of `residuals` (which `dense` must hold too).
    init(of value: String, dense: DenseValues, changed: Block, index: Int, inputs: Tensor, residuals: Set<String> = []) throws {
        var gram: Tensor?, cross: Tensor?
        let length = dense.length
        for (range, d) in dense.calls {
            let chunk = inputs.slicingRows((range.lowerBound * length)..<(range.upperBound * length))
            let c = try BlockExecutor.forward(changed, index: index, input: chunk, context: ExecutionContext(batch: range.count, length: length),
                                              capture: residuals.union([value]), computeOutput: false).values
            guard let x = d[value], let xc = c[value] else { throw PassOptionError("calibration", "value '\(value)' was not captured") }
            if gram == nil { gram = Tensor(zeros: [xc.shape[1], xc.shape[1]]) }
            accumulateGram(xc, into: &gram!)
            Linear.accumulate(&cross, matmul(xc, x, transposeA: true))
            for r in residuals {
                var delta = d[r]!
                delta.add(c[r]!, scale: -1)
                Linear.accumulate(&drift[r], matmul(xc, delta, transposeA: true))
            }
        }
        guard let gram, let cross else { throw PassOptionError("calibration", "no calibration windows to measure '\(value)' on") }
        self.gram = gram
        self.cross = cross
    }

    /// X'ᵀ·T for the target T = X·Wᵀ (+ r − r' when `residual` names a measured residual value).
    func targetCross(_ w: Tensor, residual: String? = nil) -> Tensor {
        var rhs = matmul(cross, w, transposeB: true)                          // [in', out]
        if let residual, let d = drift[residual] { rhs.add(d) }
        return rhs
    }

    /// The least-squares weight W* = (X'ᵀT)ᵀ·(G' + λI)⁻¹ of the dense weight `w` (target as in `targetCross`).
    func leastSquaresWeight(_ w: Tensor, residual: String? = nil, damping: Double) throws -> Tensor {
        try solveSPD(gram.ridged(damping: damping), targetCross(w, residual: residual)).transposed()
    }

    /// The outer factor B = W·Cᵀ·Aᵀ·(A·G'·Aᵀ + λI)⁻¹ given the inner factor `a`.
    func outerFactor(dense w: Tensor, inner a: Tensor, damping: Double) throws -> Tensor {
        let g = matmul(matmul(a, gram), a, transposeB: true)                  // A·G'·Aᵀ  [r, r]
        let rhs = matmul(a, matmul(cross, w, transposeB: true))               // A·C·Wᵀ   [r, out]
        return try solveSPD(g.ridged(damping: damping), rhs).transposed()
    }
}
