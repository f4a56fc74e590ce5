import XCTest
@testable import LancetTensor
import Foundation

final class VectorOpsTests: XCTestCase {
    func testElementwiseHelpersMatchNaiveLoopsIncludingInPlace() {
        for count in [0, 1, 15, 16, 17, 100] {
            var a = randomVector(count, seed: 1), b = randomVector(count, seed: 2)
            var out = [Float](repeating: 0, count: count)
            a.withPointer { pa in b.withPointer { pb in out.withPointer { add(pa, pb, count: count, out: $0) } } }
            XCTAssertEqual(out, zip(a, b).map { $0 + $1 })
            a.withPointer { pa in b.withPointer { pb in out.withPointer { multiply(pa, pb, count: count, out: $0) } } }
            XCTAssertEqual(out, zip(a, b).map { $0 * $1 })
            var inPlace = a
            inPlace.withPointer { scale($0, by: -3, count: count, out: $0) }
            XCTAssertEqual(inPlace, a.map { $0 * -3 })
            var y = b
            a.withPointer { pa in y.withPointer { axpy(alpha: 0.5, pa, $0, count: count) } }
            for i in 0..<count { XCTAssertEqual(y[i], b[i] + 0.5 * a[i], accuracy: 1e-6) }
            let d = a.withPointer { pa in b.withPointer { dot(pa, $0, count: count) } }
            XCTAssertEqual(Double(d), zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }, accuracy: 1e-5)
            let ss = a.withPointer { sumOfSquares($0, count: count) }
            XCTAssertEqual(ss, a.reduce(0.0) { $0 + Double($1 * $1) }, accuracy: 1e-9)
        }
    }

    func testArgmaxReturnsTheFirstLargestAndCountsNaNAsLargest() {
        func am(_ v: [Float]) -> Int { var w = v; return w.withPointer { argmax($0, count: v.count) } }
        XCTAssertEqual(am([]), -1)
        XCTAssertEqual(am([1, 3, 2, 3]), 1)
        XCTAssertEqual(am([-5, .nan, .nan, -1]), 1)
        XCTAssertEqual(am([.infinity, 2, .nan]), 2)
        XCTAssertEqual(am([-.infinity, -.infinity]), 0)
        XCTAssertEqual(am([.nan]), 0)
        let big = randomVector(1000, seed: 3)
        XCTAssertEqual(am(big), big.indices.max { big[$0] < big[$1] })
    }

    func testLogSumExpIsStableForLargeValuesAndMatchesADoubleReference() {
        for count in [1, 15, 16, 17, 300] {
            for offset: Float in [0, 500, -500] {
                var x = randomVector(count, seed: UInt64(count), in: -10..<10).map { $0 + offset }
                let m = Double(x.max()!)
                let ref = m + Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
                let lse = x.withPointer { logSumExp($0, count: count) }
                XCTAssertEqual(Double(lse), ref, accuracy: 2e-6 * max(1, abs(ref)), "count \(count) offset \(offset)")
            }
        }
        var empty: [Float] = [0]
        XCTAssertEqual(empty.withPointer { logSumExp($0, count: 0) }, -.infinity)
        var masked: [Float] = [-.infinity, 0, -.infinity]
        XCTAssertEqual(masked.withPointer { logSumExp($0, count: 3) }, 0)
    }
}
