import XCTest
@testable import LancetTensor

/// Tolerance: OpenBLAS sums in Float with its own blocking, so results differ from a Double
/// triple loop by about √k·ulp; relative Frobenius error below 1e-5 for k ≤ a few hundred.
final class BLASTests: XCTestCase {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 9, 5), (9, 1, 5), (5, 3, 1), (1, 1, 33), (17, 33, 9), (64, 31, 130), (3, 70, 257),
    ]

    func testMatmulMatchesNaiveLoopForAwkwardShapesAndEveryTransposition() {
        for (index, s) in Self.shapes.enumerated() {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let seed = UInt64(index * 4 + (transposeA ? 2 : 0) + (transposeB ? 1 : 0))
                    let a = transposeA ? randomMatrix(s.k, s.m, seed: seed) : randomMatrix(s.m, s.k, seed: seed)
                    let b = transposeB ? randomMatrix(s.n, s.k, seed: seed + 100) : randomMatrix(s.k, s.n, seed: seed + 100)
                    let c = matmul(a, b, transposeA: transposeA, transposeB: transposeB)
                    XCTAssertEqual(c.shape, [s.m, s.n])
                    let err = relativeError(c, naiveMatmul(a, b, transposeA: transposeA, transposeB: transposeB))
                    XCTAssertLessThan(err, 1e-5, "shape \(s) transA \(transposeA) transB \(transposeB)")
                }
            }
        }
    }

    func testMatmulWithAnEmptyDimensionGivesZerosOfTheRightShape() {
        XCTAssertEqual(matmul(Tensor(zeros: [0, 4]), randomMatrix(4, 3, seed: 1)).shape, [0, 3])
        XCTAssertEqual(matmul(randomMatrix(3, 4, seed: 1), Tensor(zeros: [4, 0])).shape, [3, 0])
        let c = matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 5]))
        XCTAssertEqual(c, Tensor(zeros: [3, 5]))
    }

    func testGemmHonoursAlphaBetaAndLeadingDimensionsOfSubmatrices() {
        let (m, n, k) = (7, 5, 6)
        let (lda, ldb, ldc) = (k + 3, n + 2, n + 4)
        var a = randomVector(m * lda, seed: 1)
        var b = randomVector(k * ldb, seed: 2)
        var c = randomVector(m * ldc, seed: 3)
        var expected = c
        a.withPointer { pa in
            b.withPointer { pb in
                c.withPointer { pc in
                    gemm(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 0.5, a: pa, lda: lda, b: pb, ldb: ldb, beta: -2, c: pc, ldc: ldc)
                }
                expected.withPointer { pe in
                    gemmReference(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 0.5, a: pa, lda: lda, b: pb, ldb: ldb, beta: -2, c: pe, ldc: ldc)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<ldc {
                if j < n {
                    XCTAssertEqual(c[i * ldc + j], expected[i * ldc + j], accuracy: 1e-5)
                } else {
                    XCTAssertEqual(c[i * ldc + j], expected[i * ldc + j], "padding column \(j) of row \(i) must be untouched")
                }
            }
        }
    }

    func testGemvMatchesNaiveLoopInBothOrientationsWithStrides() {
        for (m, n) in [(1, 1), (1, 8), (8, 1), (13, 29), (64, 3)] {
            var a = randomVector(m * n, seed: UInt64(m * 100 + n))
            for trans in [Transpose.none, .transpose] {
                let (xLen, yLen) = trans == .none ? (n, m) : (m, n)
                var x = randomVector(xLen * 2, seed: 5)  // stride 2
                var y = randomVector(yLen * 3, seed: 6)  // stride 3
                var expected = y
                for i in 0..<yLen {
                    var s = 0.0
                    for j in 0..<xLen {
                        let aij = trans == .none ? a[i * n + j] : a[j * n + i]
                        s += Double(aij) * Double(x[2 * j])
                    }
                    expected[3 * i] = Float(1.5 * s) + 0.25 * y[3 * i]
                }
                a.withPointer { pa in
                    x.withPointer { px in
                        y.withPointer { py in
                            gemv(trans: trans, m: m, n: n, alpha: 1.5, a: pa, lda: n, x: px, incx: 2, beta: 0.25, y: py, incy: 3)
                        }
                    }
                }
                XCTAssertLessThan(maxScaledDifference(y, expected), 1e-5, "m \(m) n \(n) \(trans)")
            }
        }
    }

    func testGramAccumulatedInChunksEqualsScaledXtXAndIsExactlySymmetric() {
        for columns in [1, 7, 33, 100] {
            let rows = 90
            let x = randomMatrix(rows, columns, seed: UInt64(columns))
            var g = Tensor(zeros: [columns, columns])
            for start in stride(from: 0, to: rows, by: 32) {
                accumulateGram(x.slicingRows(start..<min(start + 32, rows)), into: &g, alpha: 0.5)
            }
            var expected = naiveMatmul(x, x, transposeA: true)
            expected.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= 0.5 } }
            XCTAssertLessThan(relativeError(g, expected), 1e-5, "columns \(columns)")
            XCTAssertEqual(g, g.transposed(), "G must be full symmetric")
            XCTAssertLessThan(relativeError(gram(x), naiveMatmul(x, x, transposeA: true)), 1e-5)
        }
    }

    func testGramOfNoRowsLeavesTheAccumulatorUnchanged() {
        var g = identity(3)
        accumulateGram(Tensor(zeros: [0, 3]), into: &g)
        XCTAssertEqual(g, identity(3))
    }

    func testThreadCountCanBeSetAndReadBack() {
        let saved = threadCount
        XCTAssertGreaterThanOrEqual(saved, 1)
        setThreadCount(1)
        XCTAssertEqual(threadCount, 1)
        setThreadCount(saved)
        XCTAssertEqual(threadCount, saved)
    }
}
