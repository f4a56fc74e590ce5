import XCTest
@testable import LancetTensor

/// Tolerances (Float32, test matrices with condition number ≲ 10): reconstruction and residuals
/// relative to ‖A‖ below 1e-5; orthonormality ‖QᵀQ − I‖ below 1e-5.
final class LinearAlgebraTests: XCTestCase {
    static let spdSizes = [1, 2, 3, 17, 64, 100]

    func testCholeskyFactorsReconstructSPDMatricesOfManySizes() throws {
        for n in Self.spdSizes {
            let a = randomSPD(n, seed: UInt64(n))
            let l = try cholesky(a)
            let u = try cholesky(a, upper: true)
            for i in 0..<n {
                for j in 0..<n where j > i {
                    XCTAssertEqual(l[i, j], 0, "L must be lower triangular")
                    XCTAssertEqual(u[j, i], 0, "U must be upper triangular")
                }
                XCTAssertGreaterThan(l[i, i], 0)
            }
            XCTAssertLessThan(relativeError(naiveMatmul(l, l, transposeB: true), a), 1e-5, "n \(n)")
            XCTAssertLessThan(relativeError(naiveMatmul(u, u, transposeA: true), a), 1e-5, "n \(n)")
            XCTAssertEqual(u, l.transposed())
        }
    }

    func testSymmetricRoutinesReadOnlyTheLowerTriangle() throws {
        let a = randomSPD(9, seed: 7)
        var scribbled = a
        for i in 0..<9 { for j in (i + 1)..<9 { scribbled[i, j] = 1000 + Float(i * j) } }
        XCTAssertEqual(try cholesky(scribbled), try cholesky(a))
        XCTAssertEqual(try spdInverse(scribbled), try spdInverse(a))
        let b = randomMatrix(9, 2, seed: 8)
        XCTAssertEqual(try solveSPD(scribbled, b), try solveSPD(a, b))
        XCTAssertEqual(try symmetricEigen(scribbled).values, try symmetricEigen(a).values)
    }

    func testNonPositiveDefiniteInputThrowsWithTheFailingMinorInsteadOfCrashing() {
        var indefinite = identity(4)
        indefinite[2, 2] = -1
        let singular = Tensor(shape: [2, 2], [1, 1, 1, 1])  // PSD, rank 1
        for (matrix, minor) in [(indefinite, 3), (singular, 2), (Tensor(shape: [1, 1], [0]), 1)] {
            XCTAssertThrowsError(try cholesky(matrix)) {
                XCTAssertEqual($0 as? LinearAlgebraError, .notPositiveDefinite(routine: "spotrf", minorOrder: minor))
            }
            XCTAssertThrowsError(try solveSPD(matrix, Tensor(zeros: [matrix.rows]))) {
                XCTAssertEqual($0 as? LinearAlgebraError, .notPositiveDefinite(routine: "spotrf", minorOrder: minor))
            }
            XCTAssertThrowsError(try spdInverse(matrix)) {
                XCTAssertEqual($0 as? LinearAlgebraError, .notPositiveDefinite(routine: "spotrf", minorOrder: minor))
            }
        }
    }

    func testNonFiniteInputThrowsInsteadOfCrashing() {
        var a = randomSPD(4, seed: 1)
        a[1, 0] = .nan
        XCTAssertThrowsError(try cholesky(a)) { XCTAssertEqual($0 as? LinearAlgebraError, .nonFiniteInput(routine: "spotrf")) }
        XCTAssertThrowsError(try symmetricEigen(a)) { XCTAssertEqual($0 as? LinearAlgebraError, .nonFiniteInput(routine: "ssyevd")) }
        a[1, 0] = .infinity
        XCTAssertThrowsError(try svd(a)) { XCTAssertEqual($0 as? LinearAlgebraError, .nonFiniteInput(routine: "sgesdd")) }
        XCTAssertThrowsError(try solveSPD(randomSPD(4, seed: 1), Tensor(shape: [4], [0, .nan, 0, 0])))
    }

    func testErrorDescriptionsNameTheRoutineAndTheReason() {
        XCTAssertEqual(
            LinearAlgebraError.notPositiveDefinite(routine: "spotrf", minorOrder: 3).description,
            "spotrf: matrix is not positive definite (leading minor of order 3 is not positive)")
        XCTAssertTrue(LinearAlgebraError.didNotConverge(routine: "sgesdd", info: 2).description.hasPrefix("sgesdd: did not converge"))
        XCTAssertTrue(LinearAlgebraError.invalidArgument(routine: "spotrs", info: -4).description.contains("argument 4"))
    }

    func testSolveSPDLeavesSmallResidualsForVectorAndMatrixRightHandSides() throws {
        for n in Self.spdSizes {
            let a = randomSPD(n, seed: UInt64(n) + 50)
            for r in [0, 1, 5] {  // 0: a vector right-hand side
                let b = r == 0 ? Tensor(shape: [n], randomVector(n, seed: 9)) : randomMatrix(n, r, seed: UInt64(r))
                let x = try solveSPD(a, b)
                XCTAssertEqual(x.shape, b.shape)
                let ax = naiveMatmul(a, x.reshaped([n, max(r, 1)]))
                XCTAssertLessThan(relativeError(ax, b.reshaped([n, max(r, 1)])), 1e-5, "n \(n) r \(r)")
            }
        }
        XCTAssertEqual(try solveSPD(identity(3), Tensor(zeros: [3, 0])).shape, [3, 0])
    }

    func testSPDInverseIsFullySymmetricAndInvertsTheMatrix() throws {
        for n in Self.spdSizes {
            let a = randomSPD(n, seed: UInt64(n) + 90)
            let inv = try spdInverse(a)
            XCTAssertEqual(inv, inv.transposed(), "inverse must be mirrored to a full symmetric matrix")
            XCTAssertLessThan(relativeError(naiveMatmul(a, inv), identity(n)), 1e-5, "n \(n)")
        }
    }

    func checkSVD(_ a: Tensor, rank: Int? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let (m, n) = (a.rows, a.columns)
        let k = min(m, n)
        let (u, s, vt) = try svd(a)
        XCTAssertEqual(u.shape, [m, k], file: file, line: line)
        XCTAssertEqual(vt.shape, [k, n], file: file, line: line)
        XCTAssertEqual(s.count, k, file: file, line: line)
        XCTAssertTrue(zip(s, s.dropFirst()).allSatisfy { $0 >= $1 }, "descending", file: file, line: line)
        XCTAssertTrue(s.allSatisfy { $0 >= 0 }, file: file, line: line)
        var us = u
        for i in 0..<m { for j in 0..<k { us[i, j] *= s[j] } }
        XCTAssertLessThan(relativeError(naiveMatmul(us, vt), a), 1e-5, "‖A − UΣVᵀ‖/‖A‖ for \(m)×\(n)", file: file, line: line)
        XCTAssertLessThan(relativeError(naiveMatmul(u, u, transposeA: true), identity(k)), 1e-5, "UᵀU = I", file: file, line: line)
        XCTAssertLessThan(relativeError(naiveMatmul(vt, vt, transposeB: true), identity(k)), 1e-5, "VᵀV = I", file: file, line: line)
        if let rank {
            for j in rank..<k { XCTAssertLessThan(s[j], 1e-5 * s[0], "trailing singular value \(j)", file: file, line: line) }
            if rank > 0 { XCTAssertGreaterThan(s[rank - 1], 1e-3 * s[0], file: file, line: line) }
        }
    }

    func testSVDReconstructsMatricesOfAwkwardShapes() throws {
        for (index, (m, n)) in [(1, 1), (1, 9), (9, 1), (5, 3), (3, 5), (40, 17), (17, 40), (64, 64)].enumerated() {
            try checkSVD(randomMatrix(m, n, seed: UInt64(index)))
        }
    }

    func testSVDReconstructsRankDeficientMatrices() throws {
        for (m, n, r) in [(20, 12, 1), (12, 20, 3), (30, 30, 7), (8, 8, 0)] {
            let a = naiveMatmul(randomMatrix(m, r, seed: UInt64(m)), randomMatrix(r, n, seed: UInt64(n)))
            if r == 0 {
                let (_, s, _) = try svd(a)
                XCTAssertEqual(s, [Float](repeating: 0, count: 8))
            } else {
                try checkSVD(a, rank: r)
            }
        }
    }

    func testSVDOfAnEmptyMatrixHasNoSingularValues() throws {
        let (u, s, vt) = try svd(Tensor(zeros: [0, 4]))
        XCTAssertEqual(u.shape, [0, 0])
        XCTAssertEqual(s, [])
        XCTAssertEqual(vt.shape, [0, 4])
    }

    func testSymmetricEigenReconstructsWithAscendingValuesAndOrthonormalColumns() throws {
        for n in [1, 2, 5, 31, 80] {
            let b = randomMatrix(n, n, seed: UInt64(n) + 7)
            let a = Tensor(shape: [n, n], (0..<(n * n)).map { (b[flat: $0] + b[$0 % n, $0 / n]) / 2 })  // symmetric, indefinite
            let (values, v) = try symmetricEigen(a)
            XCTAssertEqual(values.count, n)
            XCTAssertTrue(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }, "ascending")
            var vl = v
            for i in 0..<n { for j in 0..<n { vl[i, j] *= values[j] } }
            XCTAssertLessThan(relativeError(naiveMatmul(a, v), vl), 1e-5, "A·V = V·Λ, n \(n)")
            XCTAssertLessThan(relativeError(naiveMatmul(v, v, transposeA: true), identity(n)), 1e-5)
        }
    }

    func testSymmetricEigenPutsEachEigenvectorInAColumn() throws {
        let (values, v) = try symmetricEigen(Tensor(shape: [2, 2], [2, 1, 1, 2]))
        XCTAssertEqual(values[0], 1, accuracy: 1e-6)
        XCTAssertEqual(values[1], 3, accuracy: 1e-6)
        // Column 0 ∝ (1, −1), column 1 ∝ (1, 1), up to sign.
        XCTAssertEqual(abs(v[0, 0]), Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(v[0, 0], -v[1, 0], accuracy: 1e-6)
        XCTAssertEqual(v[0, 1], v[1, 1], accuracy: 1e-6)
    }

    func testEmptyMatricesFactorToEmptyResults() throws {
        let empty = Tensor(zeros: [0, 0])
        XCTAssertEqual(try cholesky(empty).shape, [0, 0])
        XCTAssertEqual(try spdInverse(empty).shape, [0, 0])
        XCTAssertEqual(try symmetricEigen(empty).values, [])
        XCTAssertEqual(try solveSPD(empty, Tensor(zeros: [0])).shape, [0])
    }
}
