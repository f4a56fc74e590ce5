#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// RMSNorm, forward and backward, over rows of a row-major [rows, dim] matrix.
//
//   r   = 1 / sqrt(mean_j(x_j²) + eps)         (sum of squares accumulated in Double)
//   y_j = (x_j · r) · w_j                        (in Float, in this order, as llama.cpp and HF do)
//
// Single-threaded: callers split rows with `parallelFor` when that pays off.

/// The reciprocal RMS 1/sqrt(mean(x²) + eps) of one row of `dim` values.
@inline(__always) func reciprocalRMS(_ x: UnsafePointer<Float>, dim: Int, eps: Float) -> Float {
    let mean = Float(sumOfSquares(x, count: dim) / Double(dim))
    return 1 / (mean + eps).squareRoot()
}

/// RMSNorm of each row: out[i, j] = x[i, j] / sqrt(mean_j x[i, j]² + eps) · weight[j].
///
/// Shapes: x, out [rows, dim] (contiguous), weight [dim]. `out` may be `x` (in place).
public func rmsNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
    out: UnsafeMutablePointer<Float>
) {
    precondition(rows >= 0 && dim > 0, "rmsNorm: rows \(rows), dim \(dim)")
    let body = dim & ~15
    for row in 0..<rows {
        let xr = x + row * dim
        let yr = out + row * dim
        let r = reciprocalRMS(xr, dim: dim, eps: eps)
        var j = 0
        while j < body {
            store16((load16(xr + j) * r) * load16(weight + j), yr + j)
            j += 16
        }
        if j < dim {
            let rest = dim - j
            storePartial16((loadPartial16(xr + j, rest) * r) * loadPartial16(weight + j, rest), yr + j, rest)
        }
    }
}

/// Naive reference for `rmsNorm`.
func rmsNormReference(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
    out: UnsafeMutablePointer<Float>
) {
    for row in 0..<rows {
        var sum = 0.0
        for j in 0..<dim { let v = x[row * dim + j]; sum += Double(v * v) }
        let r = 1 / (Float(sum / Double(dim)) + eps).squareRoot()
        for j in 0..<dim { out[row * dim + j] = (x[row * dim + j] * r) * weight[j] }
    }
}

/// Backward of `rmsNorm`: given dy = ∂L/∂y, writes dx = ∂L/∂x and **adds** ∂L/∂w to `dWeight`.
///
/// With g_j = dy_j·w_j and r as in the forward:
///   dx_j = r·g_j − x_j · r³ · (Σ_k g_k·x_k) / dim
///   dw_j += Σ_rows dy_j · x_j · r
/// Shapes: x, dy, dx [rows, dim]; weight, dWeight [dim]. `dx` may be `x` or `dy`.
public func rmsNormBackward(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
    rows: Int, dim: Int, eps: Float,
    dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>
) {
    precondition(rows >= 0 && dim > 0, "rmsNormBackward: rows \(rows), dim \(dim)")
    let body = dim & ~15
    for row in 0..<rows {
        let xr = x + row * dim
        let dyr = dy + row * dim
        let dxr = dx + row * dim
        let r = reciprocalRMS(xr, dim: dim, eps: eps)
        // s = Σ g_k x_k, accumulated in Double like the sum of squares.
        var acc = SIMD8<Double>()
        var j = 0
        while j < body {
            let p = load16(dyr + j) * load16(weight + j) * load16(xr + j)
            acc += SIMD8<Double>(p.lowHalf) + SIMD8<Double>(p.highHalf)
            j += 16
        }
        var s = acc.sum()
        while j < dim { s += Double(dyr[j] * weight[j] * xr[j]); j += 1 }
        let c = Float(s / Double(dim)) * r * r * r
        j = 0
        while j < body {
            let xv = load16(xr + j), dyv = load16(dyr + j)
            store16(load16(dWeight + j) + dyv * xv * r, dWeight + j)
            store16(r * dyv * load16(weight + j) - xv * c, dxr + j)
            j += 16
        }
        while j < dim {
            let xv = xr[j], dyv = dyr[j]
            dWeight[j] += dyv * xv * r
            dxr[j] = r * dyv * weight[j] - xv * c
            j += 1
        }
    }
}

/// Naive reference for `rmsNormBackward`, in Double.
func rmsNormBackwardReference(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
    rows: Int, dim: Int, eps: Float,
    dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>
) {
    for row in 0..<rows {
        let o = row * dim
        var sum = 0.0
        for j in 0..<dim { sum += Double(x[o + j]) * Double(x[o + j]) }
        let r = 1 / (sum / Double(dim) + Double(eps)).squareRoot()
        var s = 0.0
        for j in 0..<dim { s += Double(dy[o + j]) * Double(weight[j]) * Double(x[o + j]) }
        for j in 0..<dim {
            dWeight[j] += Float(Double(dy[o + j]) * Double(x[o + j]) * r)
            dx[o + j] = Float(r * Double(dy[o + j]) * Double(weight[j]) - Double(x[o + j]) * r * r * r * s / Double(dim))
        }
    }
}
