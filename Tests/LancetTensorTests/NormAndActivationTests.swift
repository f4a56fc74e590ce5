import XCTest
@testable import LancetTensor
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Widths straddle the 16-lane vector body and its tail.
private let widths = [1, 3, 15, 16, 17, 64, 100, 576, 1000]

/// Kernels against naive references (relative 2e-6 unless stated) and backward kernels against
/// central finite differences of a Double forward (relative 1e-4 of the largest gradient entry).
final class NormAndActivationTests: XCTestCase {
    // MARK: exp

    func testVectorExpIsWithinTwoUlpOfExpfAndSaturatesLikeIt() {
        var x: Float = -110
        var worst: Float = 0
        while x < 90 {
            let lanes = SIMD16<Float>((0..<16).map { x + Float($0) * 0.0123 })
            let e = exp16(lanes)
            for i in 0..<16 {
                let ref = expf(lanes[i])
                if ref.isInfinite { XCTAssertEqual(e[i], .infinity, "x \(lanes[i])") }
                else if ref >= Float.leastNormalMagnitude { worst = max(worst, abs(e[i] - ref) / ref.ulp) }
                else { XCTAssertEqual(e[i], ref, accuracy: 2 * Float.leastNonzeroMagnitude * 4, "subnormal x \(lanes[i])") }
            }
            x += 0.197
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst error in ulp")
        let special = exp16(SIMD16<Float>(repeating: 0).replacing(with: .nan, where: SIMD16<Int32>(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) .== 1))
        XCTAssertEqual(special[0], 1)
        XCTAssertTrue(special[1].isNaN)
        XCTAssertEqual(exp16(SIMD16(repeating: -.infinity))[0], 0)
        XCTAssertEqual(exp16(SIMD16(repeating: .infinity))[0], .infinity)
    }

    /// Attention's exp of shifted scores: within 2 ulp of `expf` over [−87.33, 0], exactly 0 below (−∞ included).
    func testNonPositiveVectorExpIsWithinTwoUlpOfExpfAndZeroBelowTheNormalRange() {
        var x: Float = -95
        var worst: Float = 0
        while x <= 0 {
            let lanes = SIMD16<Float>((0..<16).map { min(0, x + Float($0) * 0.0123) })
            let e = expNonPositive16(lanes)
            for i in 0..<16 {
                if lanes[i] < -87.33 { XCTAssertEqual(e[i], 0, "x \(lanes[i])") }
                else { worst = max(worst, abs(e[i] - expf(lanes[i])) / expf(lanes[i]).ulp) }
            }
            x += 0.0917
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst error in ulp")
        XCTAssertEqual(expNonPositive16(SIMD16(repeating: 0))[0], 1)
        XCTAssertEqual(expNonPositive16(SIMD16(repeating: -.infinity))[0], 0)
    }

    // MARK: RMSNorm

    func testRMSNormMatchesNaiveReferenceForManyWidthsAndRunsInPlace() {
        for dim in widths {
            let rows = 3
            var x = randomVector(rows * dim, seed: UInt64(dim), in: -3..<3)
            var w = randomVector(dim, seed: 1, in: 0.5..<1.5)
            var out = [Float](repeating: 0, count: rows * dim)
            var ref = out
            x.withPointer { px in
                w.withPointer { pw in
                    out.withPointer { rmsNorm(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: $0) }
                    ref.withPointer { rmsNormReference(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: $0) }
                    rmsNorm(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: px)
                }
            }
            XCTAssertLessThan(maxScaledDifference(out, ref), 2e-6, "dim \(dim)")
            XCTAssertEqual(x, out, "in place must equal out of place, dim \(dim)")
        }
    }

    func testRMSNormOfAZeroRowIsZeroThanksToEpsilon() {
        var x = [Float](repeating: 0, count: 20)
        var w = [Float](repeating: 1, count: 20)
        x.withPointer { px in w.withPointer { rmsNorm(px, weight: $0, rows: 1, dim: 20, eps: 1e-6, out: px) } }
        XCTAssertEqual(x, [Float](repeating: 0, count: 20))
    }

    func testRMSNormBackwardMatchesFiniteDifferencesOfADoubleForward() {
        for dim in [1, 5, 17, 40] {
            let rows = 2, eps: Float = 1e-3
            var x = randomVector(rows * dim, seed: UInt64(dim) + 3, in: -2..<2)
            var w = randomVector(dim, seed: 4, in: 0.5..<1.5)
            var c = randomVector(rows * dim, seed: 5)  // L = Σ c·y, so dy = c
            func loss(_ xs: [Double], _ ws: [Double]) -> Double {
                var l = 0.0
                for r in 0..<rows {
                    let row = xs[(r * dim)..<((r + 1) * dim)]
                    let inv = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(dim) + Double(eps)).squareRoot()
                    for j in 0..<dim { l += Double(c[r * dim + j]) * xs[r * dim + j] * inv * ws[j] }
                }
                return l
            }
            let xd = x.map(Double.init), wd = w.map(Double.init)
            let gx = numericalGradient({ loss($0, wd) }, at: xd)
            let gw = numericalGradient({ loss(xd, $0) }, at: wd)
            var dx = [Float](repeating: 0, count: rows * dim)
            var dw = [Float](repeating: 1, count: dim)  // accumulates onto 1
            var refDx = dx, refDw = dw
            x.withPointer { px in
                w.withPointer { pw in
                    c.withPointer { pc in
                        dx.withPointer { pdx in dw.withPointer { rmsNormBackward(px, weight: pw, dy: pc, rows: rows, dim: dim, eps: eps, dx: pdx, dWeight: $0) } }
                        refDx.withPointer { pdx in refDw.withPointer { rmsNormBackwardReference(px, weight: pw, dy: pc, rows: rows, dim: dim, eps: eps, dx: pdx, dWeight: $0) } }
                    }
                }
            }
            XCTAssertLessThan(maxScaledDifference(dx, gx), 1e-4, "dx, dim \(dim)")
            XCTAssertLessThan(maxScaledDifference(dw.map { $0 - 1 }, gw), 1e-4, "dw accumulated, dim \(dim)")
            XCTAssertLessThan(maxScaledDifference(dx, refDx), 2e-6, "dx vs naive, dim \(dim)")
            XCTAssertLessThan(maxScaledDifference(dw, refDw), 2e-6, "dw vs naive, dim \(dim)")
        }
    }

    // MARK: softmax

    func testSoftmaxMatchesNaiveReferenceSumsToOneAndIgnoresLargeOffsets() {
        for count in widths {
            for offset: Float in [0, 1000, -1000] {
                var x = randomVector(count, seed: UInt64(count), in: -8..<8).map { $0 + offset }
                var ref = x
                x.withPointer { softmax(inPlace: $0, count: count) }
                ref.withPointer { softmaxReference(inPlace: $0, count: count) }
                XCTAssertLessThan(maxScaledDifference(x, ref), 2e-6, "count \(count) offset \(offset)")
                XCTAssertEqual(Double(x.reduce(0, +)), 1, accuracy: 1e-5)
            }
        }
    }

    func testSoftmaxGivesMaskedEntriesExactlyZeroAndAFullyMaskedRowZeros() {
        var x: [Float] = (0..<20).map { $0 % 3 == 0 ? -.infinity : Float($0) / 10 }
        x.withPointer { softmax(inPlace: $0, count: 20) }
        for j in 0..<20 where j % 3 == 0 { XCTAssertEqual(x[j], 0) }
        XCTAssertEqual(Double(x.reduce(0, +)), 1, accuracy: 1e-6)
        var masked = [Float](repeating: -.infinity, count: 5)
        masked.withPointer { softmax(inPlace: $0, count: 5) }
        XCTAssertEqual(masked, [0, 0, 0, 0, 0])
    }

    func testSoftmaxBackwardMatchesFiniteDifferences() {
        for count in [1, 2, 17, 40] {
            let x = randomVector(count, seed: UInt64(count) + 11, in: -3..<3)
            var c = randomVector(count, seed: 12)
            let gx = numericalGradient({ xs in
                let m = xs.max()!
                let e = xs.map { Foundation.exp($0 - m) }
                let s = e.reduce(0, +)
                return zip(e, c).reduce(0) { $0 + $1.0 / s * Double($1.1) }
            }, at: x.map(Double.init))
            var y = x
            y.withPointer { softmax(inPlace: $0, count: count) }
            var dx = [Float](repeating: 0, count: count)
            var ref = dx
            y.withPointer { py in
                c.withPointer { pc in
                    dx.withPointer { softmaxBackward(py, pc, count: count, dx: $0) }
                    ref.withPointer { softmaxBackwardReference(py, pc, count: count, dx: $0) }
                    softmaxBackward(py, pc, count: count, dx: pc)  // in place over dy
                }
            }
            XCTAssertLessThan(maxScaledDifference(dx, gx), 1e-4, "count \(count)")
            XCTAssertLessThan(maxScaledDifference(dx, ref), 2e-6)
            XCTAssertEqual(c, dx)
        }
    }

    // MARK: SiLU and SwiGLU

    func testSiLUAndSwiGLUMatchNaiveReferencesIncludingExtremeInputs() {
        for count in widths {
            var x = randomVector(count, seed: UInt64(count) + 20, in: -12..<12)
            if count > 3 { x[0] = -200; x[1] = 200; x[2] = 0 }
            var up = randomVector(count, seed: 21)
            var out = [Float](repeating: 0, count: count), ref = out
            x.withPointer { px in
                out.withPointer { silu(px, count: count, out: $0) }
                ref.withPointer { siluReference(px, count: count, out: $0) }
            }
            XCTAssertLessThan(maxScaledDifference(out, ref), 2e-6, "silu \(count)")
            x.withPointer { px in
                up.withPointer { pu in
                    out.withPointer { swiglu(gate: px, up: pu, count: count, out: $0) }
                    ref.withPointer { swigluReference(gate: px, up: pu, count: count, out: $0) }
                }
            }
            XCTAssertLessThan(maxScaledDifference(out, ref), 2e-6, "swiglu \(count)")
            var dy = randomVector(count, seed: 22)
            x.withPointer { px in
                dy.withPointer { pd in
                    out.withPointer { siluBackward(px, dy: pd, count: count, dx: $0) }
                    ref.withPointer { siluBackwardReference(px, dy: pd, count: count, dx: $0) }
                }
            }
            XCTAssertLessThan(maxScaledDifference(out, ref), 2e-6, "siluBackward \(count)")
        }
    }

    private static func siluDouble(_ x: Double) -> Double { x / (1 + Foundation.exp(-x)) }

    func testSiLUBackwardMatchesFiniteDifferences() {
        let count = 37
        var x = randomVector(count, seed: 30, in: -6..<6)
        var c = randomVector(count, seed: 31)
        let gx = numericalGradient({ xs in zip(xs, c).reduce(0) { $0 + Self.siluDouble($1.0) * Double($1.1) } }, at: x.map(Double.init))
        var dx = [Float](repeating: 0, count: count)
        x.withPointer { px in c.withPointer { pc in dx.withPointer { siluBackward(px, dy: pc, count: count, dx: $0) } } }
        XCTAssertLessThan(maxScaledDifference(dx, gx), 1e-4)
    }

    func testSwiGLUBackwardMatchesFiniteDifferencesForBothInputs() {
        let count = 37
        var gate = randomVector(count, seed: 40, in: -6..<6)
        var up = randomVector(count, seed: 41, in: -2..<2)
        var c = randomVector(count, seed: 42)
        func loss(_ g: [Double], _ u: [Double]) -> Double {
            (0..<count).reduce(0) { $0 + Self.siluDouble(g[$1]) * u[$1] * Double(c[$1]) }
        }
        let gd = gate.map(Double.init), ud = up.map(Double.init)
        let dgNumeric = numericalGradient({ loss($0, ud) }, at: gd)
        let duNumeric = numericalGradient({ loss(gd, $0) }, at: ud)
        var dg = [Float](repeating: 0, count: count), du = dg
        gate.withPointer { pg in
            up.withPointer { pu in
                c.withPointer { pc in
                    dg.withPointer { pdg in du.withPointer { swigluBackward(gate: pg, up: pu, dOut: pc, count: count, dGate: pdg, dUp: $0) } }
                }
            }
        }
        XCTAssertLessThan(maxScaledDifference(dg, dgNumeric), 1e-4)
        XCTAssertLessThan(maxScaledDifference(du, duNumeric), 1e-4)
        // In place: gradients written over the inputs they are computed from.
        gate.withPointer { pg in up.withPointer { pu in c.withPointer { swigluBackward(gate: pg, up: pu, dOut: $0, count: count, dGate: pg, dUp: pu) } } }
        XCTAssertEqual(gate, dg)
        XCTAssertEqual(up, du)
    }
}
