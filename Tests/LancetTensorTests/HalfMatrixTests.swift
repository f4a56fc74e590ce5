import CKernels
import XCTest
@testable import LancetTensor

/// 16-bit weights: exact conversions both ways, rounding to nearest even, and products that equal the Float
/// product by the widened matrix.
final class HalfMatrixTests: XCTestCase {
    /// Every one of the 65,536 bit patterns widens and rounds back to itself (NaN stays NaN), in both formats,
    /// and the portable f16 widening (the non-F16C path) agrees with Swift's Float16.
    func testEveryBitPatternRoundTrips() {
        for format in HalfFormat.allCases {
            for b in 0...UInt16.max {
                let v = format.value(b)
                if v.isNaN { XCTAssertTrue(format.value(format.bits(v)).isNaN); continue }
                if format.bits(v) != b { XCTFail("\(format) \(String(b, radix: 16)) → \(v) → \(String(format.bits(v), radix: 16))"); return }
            }
        }
        for b in 0...UInt16.max {
            let want = Float(Float16(bitPattern: b)), got = lancet_f16_to_f32(b)
            if want.isNaN ? !got.isNaN : want.bitPattern != got.bitPattern { XCTFail("f16 \(String(b, radix: 16)): \(got) vs \(want)"); return }
        }
    }

    func testRoundingIsToNearestWithTiesToEven() {
        // bf16 keeps 7 mantissa bits: 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷ and goes to the even 1.
        XCTAssertEqual(HalfFormat.bf16.bits(1 + 0x1p-8), 0x3F80)
        XCTAssertEqual(HalfFormat.bf16.bits(1 + 3 * 0x1p-8), 0x3F82)  // halfway, rounds up to even
        XCTAssertEqual(HalfFormat.bf16.bits(1 + 0x1p-8 + 0x1p-20), 0x3F81)  // above halfway
        XCTAssertEqual(HalfFormat.bf16.bits(-2.5), 0xC020)
        XCTAssertEqual(HalfFormat.f16.bits(1 + 0x1p-11), 0x3C00)  // f16: 10 mantissa bits
        XCTAssertEqual(HalfFormat.f16.bits(70000), 0x7C00)  // beyond 65504: +∞
        XCTAssertEqual(HalfFormat.bf16.bits(.infinity), 0x7F80)
    }

    /// The vector widening (F16C / AVX2 in release builds) gives the scalar values, through `widened`.
    func testWideningMatchesTheScalarConversion() {
        var g = SeededGenerator(seed: 3)
        let m = randomMatrix(37, 45, seed: 9)
        for format in HalfFormat.allCases {
            let h = HalfMatrix(m, format: format)
            let w = h.widened()
            for i in 0..<37 { for j in 0..<45 { XCTAssertEqual(w[i, j], format.value(format.bits(m[i, j]))) } }
            _ = g.next()
        }
    }

    /// One row through the 16-bit kernel, several through sgemm on the widened matrix: both equal the Double product
    /// by the widened matrix.
    func testProductsEqualTheProductByTheWidenedMatrix() {
        for (rows, columns, tokens) in [(1, 5, 1), (200, 576, 1), (130, 77, 1), (64, 48, 3)] {
            let m = randomMatrix(rows, columns, seed: UInt64(rows * columns))
            let x = randomMatrix(tokens, columns, seed: 5)
            for format in HalfFormat.allCases {
                let h = HalfMatrix(m, format: format)
                let got = h.multiply(x), want = naiveMatmul(x, h.widened(), transposeB: true)
                XCTAssertLessThan(relativeError(got, want), 1e-6, "\(format) [\(rows), \(columns)] × \(tokens)")
                XCTAssertGreaterThan(relativeError(got, naiveMatmul(x, m, transposeB: true)), 0, "the copy is rounded")
            }
        }
    }

    /// More than one row multiplies by the matrix widened a tile of rows at a time: with one tile, the sgemm on the
    /// whole widened matrix bit for bit; with several, the same sums up to sgemm's rounding (its blocking depends on
    /// the shape of each call).
    func testTiledPrefillEqualsTheWholeWidenedProduct() {
        let m = randomMatrix(1_000, 96, seed: 21)
        let x = Tensor(shape: [37, 96], randomVector(37 * 96, seed: 22))
        for format in HalfFormat.allCases {
            let h = HalfMatrix(m, format: format)
            let whole = matmul(x, h.widened(), transposeB: true)
            XCTAssertEqual(h.multiply(x), whole, "\(format): the default tile holds all 1,000 rows")
            let scale = whole.scalars.map(abs).max()!
            for tileRows in [16, 250, 333, 999] {
                let tiled = h.multiply(x, tileBytes: tileRows * 96 * 4)
                let difference = zip(tiled.scalars, whole.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(difference, 1e-6 * scale, "\(format): tiles of \(tileRows) rows")
            }
        }
        XCTAssertEqual(HalfMatrix(m, format: .f16).multiply(Tensor(zeros: [0, 96])).shape, [0, 1_000])
    }
}
