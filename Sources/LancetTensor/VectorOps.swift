import CBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Element-wise and reducing helpers over contiguous Float vectors, for the runtime.
// Outputs may alias inputs element for element.

/// out = a + b. Shapes: a, b, out [count].
public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
    var j = 0
    while j + 16 <= count { store16(load16(a + j) + load16(b + j), out + j); j += 16 }
    while j < count { out[j] = a[j] + b[j]; j += 1 }
}

/// out = a ⊙ b (element-wise product). Shapes: a, b, out [count].
public func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
    var j = 0
    while j + 16 <= count { store16(load16(a + j) * load16(b + j), out + j); j += 16 }
    while j < count { out[j] = a[j] * b[j]; j += 1 }
}

/// out = alpha·x. Shapes: x, out [count].
public func scale(_ x: UnsafePointer<Float>, by alpha: Float, count: Int, out: UnsafeMutablePointer<Float>) {
    var j = 0
    while j + 16 <= count { store16(load16(x + j) * alpha, out + j); j += 16 }
    while j < count { out[j] = x[j] * alpha; j += 1 }
}

/// y ← alpha·x + y (cblas_saxpy). Shapes: x, y [count].
public func axpy(alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    if count == 0 { return }
    cblas_saxpy(blasInt(count, "count"), alpha, x, 1, y, 1)
}

/// Σ a_j·b_j (cblas_sdot, Float accumulation). Shapes: a, b [count].
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    if count == 0 { return 0 }
    return cblas_sdot(blasInt(count, "count"), a, 1, b, 1)
}

/// Σ x_j², each square formed in Float and summed in Double. Shape: x [count].
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var acc = SIMD8<Double>()
    var j = 0
    while j + 16 <= count { acc += squaresAsDouble(load16(x + j)); j += 16 }
    var s = acc.sum()
    while j < count { s += Double(x[j] * x[j]); j += 1 }
    return s
}

/// The index of the first largest element, a NaN counting as larger than any number (as NumPy
/// does), so a NaN is never hidden behind a finite winner; −1 if `count` is 0.
public func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
    var best = -1
    var bestValue = -Float.infinity
    for j in 0..<count {
        if x[j].isNaN { return j }
        if x[j] > bestValue || (best < 0 && x[j] == -.infinity) {
            best = j
            bestValue = x[j]
        }
    }
    return best
}

/// log Σ exp(x_j), computed as m + log Σ exp(x_j − m) with m = max x_j (sum in Double).
/// Returns −∞ for an empty or all −∞ vector, and NaN if any x_j is NaN.
public func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var vmax = SIMD16<Float>(repeating: -.infinity)
    var j = 0
    while j + 16 <= count { vmax = lanewiseMax(vmax, load16(x + j)); j += 16 }
    var m = maxLane(vmax)
    while j < count { m = maxPropagatingNaN(m, x[j]); j += 1 }
    if m == -.infinity || m.isNaN { return m }
    if m == .infinity { return .infinity }
    var acc = SIMD8<Double>()
    j = 0
    while j + 16 <= count {
        let e = exp16(load16(x + j) - m)
        acc += SIMD8<Double>(e.lowHalf) + SIMD8<Double>(e.highHalf)
        j += 16
    }
    var s = acc.sum()
    while j < count { s += Double(expf(x[j] - m)); j += 1 }
    return m + Float(log(s))
}
