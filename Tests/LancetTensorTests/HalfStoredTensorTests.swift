import Foundation
import XCTest
@testable import LancetTensor

/// Tensors that hold 16-bit values (an F16 or BF16 weight of a loaded file): Float memory only once something
/// reads them as Float, the exact widened values then, copy-on-write as any view, and a `HalfMatrix` in the same
/// format that uses the values as they are.
final class HalfStoredTensorTests: XCTestCase {
    /// Owns 16-bit values the way a mapped file does.
    private final class Bits {
        let pointer: UnsafeMutablePointer<UInt16>
        let count: Int
        init(_ values: [UInt16]) {
            count = values.count
            pointer = .allocate(capacity: max(1, values.count))
            pointer.initialize(from: values, count: values.count)
        }
        deinit { pointer.deallocate() }
    }

    /// Random matrix values rounded to `format`, as bits and as the Floats they stand for.
    private func stored(_ rows: Int, _ columns: Int, format: HalfFormat, seed: UInt64) -> (tensor: Tensor, floats: [Float], bits: Bits) {
        let m = randomMatrix(rows, columns, seed: seed)
        let bits = Bits(m.scalars.map { format.bits($0) })
        let floats = (0..<bits.count).map { format.value(bits.pointer[$0]) }
        let t = Tensor(shape: [rows, columns], widening: HalfSource(bits: bits.pointer, format: format, owner: bits))
        return (t, floats, bits)
    }

    func testValuesAreWidenedExactlyOnlyWhenReadAsFloat() {
        for format in HalfFormat.allCases {
            let (t, floats, _) = stored(7, 37, format: format, seed: 1)
            XCTAssertFalse(t.holdsFloats, "\(format): nothing read yet")
            XCTAssertEqual(t.halfSource?.format, format)
            var row = [Float](repeating: .nan, count: 37)
            row.withUnsafeMutableBufferPointer { t.copyRow(3, to: $0.baseAddress!) }
            XCTAssertEqual(row, Array(floats[(3 * 37)..<(4 * 37)]), "\(format): a row from the 16-bit values")
            XCTAssertFalse(t.holdsFloats, "\(format): copying a row does not widen the tensor")
            let slice = t.slicingRows(2..<5)
            XCTAssertEqual(slice.halfSource?.format, format, "\(format): a slice of rows keeps the 16-bit values")
            XCTAssertFalse(t.holdsFloats || slice.holdsFloats)
            XCTAssertTrue(t.description.hasPrefix("Tensor([7, 37]: [\(floats[0]), "), t.description)
            XCTAssertFalse(t.holdsFloats, "\(format): printing does not widen")
            XCTAssertEqual(slice.scalars, Array(floats[(2 * 37)..<(5 * 37)]))
            XCTAssertEqual(t.scalars, floats, "\(format): every value widened exactly")
            XCTAssertTrue(t.holdsFloats)
            XCTAssertNotNil(t.halfSource, "\(format): the values are still the 16-bit ones")
            row.withUnsafeMutableBufferPointer { t.copyRow(6, to: $0.baseAddress!) }
            XCTAssertEqual(row, Array(floats[(6 * 37)...]))
        }
    }

    func testWritingCopiesAndLeavesTheStoredValuesAlone() {
        let (t, floats, bits) = stored(4, 33, format: .f16, seed: 2)
        var u = t
        u[2, 5] = 42
        XCTAssertNil(u.halfSource, "a changed tensor no longer holds the 16-bit values")
        XCTAssertEqual(u[2, 5], 42)
        XCTAssertEqual(u[1, 1], floats[34])
        XCTAssertFalse(t.holdsFloats, "the copy was widened from the 16-bit values without widening the original")
        XCTAssertEqual(t.scalars, floats)
        XCTAssertEqual(HalfFormat.f16.value(bits.pointer[2 * 33 + 5]), floats[2 * 33 + 5], "the stored bits are untouched")
        var v = t.reshaped([2, 66])
        XCTAssertEqual(v.storageAddress, t.storageAddress, "a reshape shares the storage")
        v[0, 0] = -1
        XCTAssertNotEqual(v.storageAddress, t.storageAddress)
        XCTAssertEqual(t[0, 0], floats[0])
    }

    /// Many threads reading an unwidened tensor at once all see the exact values (one of them widens it).
    func testConcurrentFirstReadsAgree() {
        for trial in 0..<20 {
            let (t, floats, _) = stored(64, 129, format: trial % 2 == 0 ? .f16 : .bf16, seed: UInt64(10 + trial))
            let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: 8)
            defer { sums.deallocate() }
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                sums[i] = t.withUnsafeBufferPointer { p in p.reduce(0) { $0 + Double($1) } }
            }
            let want = floats.reduce(0) { $0 + Double($1) }
            XCTAssertEqual(Array(sums), Array(repeating: want, count: 8), "trial \(trial)")
        }
    }

    /// A `HalfMatrix` in the tensor's own format uses its bits (no widening, no copy) and multiplies exactly as the
    /// matrix rounded from the widened Floats; in the other format it rounds the values as it would from Float.
    func testAHalfMatrixUsesStoredValuesInTheirOwnFormat() {
        let x1 = Tensor(shape: [1, 45], randomVector(45, seed: 6))
        let x5 = Tensor(shape: [5, 45], randomVector(225, seed: 7))
        for format in HalfFormat.allCases {
            let (t, floats, _) = stored(19, 45, format: format, seed: 5)
            let shared = HalfMatrix(t, format: format)
            XCTAssertTrue(shared.sharesTensorValues)
            XCTAssertFalse(t.holdsFloats, "\(format): the matrix did not widen the tensor")
            let rounded = HalfMatrix(Tensor(shape: [19, 45], floats), format: format)
            XCTAssertFalse(rounded.sharesTensorValues)
            XCTAssertEqual(shared.multiply(x1), rounded.multiply(x1), "\(format): one row")
            XCTAssertEqual(shared.multiply(x5), rounded.multiply(x5), "\(format): five rows")
            let other: HalfFormat = format == .f16 ? .bf16 : .f16
            let converted = HalfMatrix(t, format: other)
            XCTAssertFalse(converted.sharesTensorValues)
            XCTAssertFalse(t.holdsFloats, "\(format) → \(other) converts from the 16-bit values")
            XCTAssertEqual(converted.widened(), HalfMatrix(Tensor(shape: [19, 45], floats), format: other).widened())
            XCTAssertFalse(t.holdsFloats)
        }
    }
}
