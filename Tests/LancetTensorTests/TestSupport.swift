import XCTest
@testable import LancetTensor

/// A seeded [rows, columns] matrix of uniform values in [-1, 1).
func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor.randomUniform(shape: [rows, columns], in: -1..<1, generator: &g)
}

/// A seeded vector of `count` uniform values in [lo, hi).
func randomVector(_ count: Int, seed: UInt64, in range: Range<Float> = -1..<1) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * g.nextFloat() }
}

/// op(a)·op(b) by a triple loop in Double.
func naiveMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    let at = transposeA ? a.transposed() : a
    let bt = transposeB ? b.transposed() : b
    let (m, k, n) = (at.shape[0], at.shape[1], bt.shape[1])
    var c = Tensor(zeros: [m, n])
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(at[i, p]) * Double(bt[p, j]) }
            c[i, j] = Float(s)
        }
    }
    return c
}

/// The Frobenius norm, in Double.
func frobenius(_ t: Tensor) -> Double {
    t.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
}

/// ‖x − y‖_F / ‖y‖_F (or ‖x − y‖_F when y is zero).
func relativeError(_ x: Tensor, _ y: Tensor) -> Double {
    precondition(x.shape == y.shape, "relativeError: shapes \(x.shape) vs \(y.shape)")
    var d = 0.0
    for i in 0..<x.count { let e = Double(x[flat: i]) - Double(y[flat: i]); d += e * e }
    let n = frobenius(y)
    return n == 0 ? d.squareRoot() : d.squareRoot() / n
}

/// max_i |x_i − y_i| / max(1, max_i |y_i|).
func maxScaledDifference(_ x: [Float], _ y: [Float]) -> Double {
    precondition(x.count == y.count)
    var worst = 0.0, scale = 1.0
    for i in x.indices {
        worst = max(worst, abs(Double(x[i]) - Double(y[i])))
        scale = max(scale, abs(Double(y[i])))
    }
    return worst / scale
}

/// Same, for a Float result against a Double reference.
func maxScaledDifference(_ x: [Float], _ y: [Double]) -> Double {
    precondition(x.count == y.count)
    var worst = 0.0, scale = 1.0
    for i in x.indices {
        worst = max(worst, abs(Double(x[i]) - y[i]))
        scale = max(scale, abs(y[i]))
    }
    return worst / scale
}

/// Central finite differences of `f` at `x`, in Double.
func numericalGradient(_ f: ([Double]) -> Double, at x: [Double], h: Double = 1e-6) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        let saved = x[i]
        x[i] = saved + h
        let fp = f(x)
        x[i] = saved - h
        let fm = f(x)
        x[i] = saved
        g[i] = (fp - fm) / (2 * h)
    }
    return g
}

/// The identity matrix [n, n].
func identity(_ n: Int) -> Tensor {
    var t = Tensor(zeros: [n, n])
    for i in 0..<n { t[i, i] = 1 }
    return t
}

/// A symmetric positive-definite [n, n] matrix BᵀB/(n+4) + 0.5·I with B [n+4, n] random (κ ≲ 10).
func randomSPD(_ n: Int, seed: UInt64) -> Tensor {
    let b = randomMatrix(n + 4, n, seed: seed)
    var a = naiveMatmul(b, b, transposeA: true)
    for i in 0..<n { for j in 0..<n { a[i, j] = a[i, j] / Float(n + 4) + (i == j ? 0.5 : 0) } }
    return a
}

extension Array where Element == Float {
    /// Calls `body` with a mutable pointer to the elements.
    mutating func withPointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}
