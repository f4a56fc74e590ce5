import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Tensor data must lie back to back in file order, each spanning exactly what its type and shape imply,
/// as llama.cpp's reader requires: shared offsets, overlaps, relabelled types and unclaimed bytes are
/// refused with the tensor's name.
final class GGUFLayoutTests: XCTestCase {
    typealias S = LoaderTestSupport

    private func patched(_ path: String, _ edit: (inout [UInt8], GGUFFile) -> Void) throws -> String {
        let file = try GGUFFile(path: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        edit(&bytes, file)
        return temporary(try S.write(bytes))
    }

    private func setU64(_ bytes: inout [UInt8], at p: Int, _ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.replaceSubrange(p..<(p + 8), with: $0) }
    }

    func testExportedFilesAreLaidOutBackToBack() throws {
        let path = temporary(try S.tinyGGUF())
        let file = try GGUFFile(path: path)
        var expected = 0
        for t in file.tensors {
            XCTAssertEqual(t.offset, expected, t.name)
            expected += (t.byteCount + file.alignment - 1) / file.alignment * file.alignment
        }
        XCTAssertNoThrow(try ModelLoader.load(path))
    }

    func testTwoTensorsSharingOneDataOffsetAreRefused() throws {
        let path = temporary(try S.tinyGGUF())
        let file = try GGUFFile(path: path)
        // Every pair of neighbours in file order, the later pointed at the earlier's data.
        for k in [1, file.tensors.count / 2, file.tensors.count - 1] {
            let (a, b) = (file.tensors[k - 1], file.tensors[k])
            let bad = try patched(path) { bytes, f in setU64(&bytes, at: S.tensorInfoFields(bytes, f, b.name).offset, UInt64(a.offset)) }
            assertLoadError(try GGUFFile(path: bad), "tensor '\(b.name)'", "also the offset of tensor '\(a.name)'")
            assertLoadError(try ModelLoader.load(bad), "two tensors cannot share data")
        }
    }

    func testADataOffsetInsideThePreviousTensorIsRefused() throws {
        let path = temporary(try S.tinyGGUF())
        let file = try GGUFFile(path: path)
        let k = file.tensors.firstIndex { $0.byteCount > 4 * file.alignment }! + 1
        let b = file.tensors[k]
        let bad = try patched(path) { bytes, f in setU64(&bytes, at: S.tensorInfoFields(bytes, f, b.name).offset, UInt64(b.offset - file.alignment)) }
        assertLoadError(try GGUFFile(path: bad), "tensor '\(b.name)'", "overlaps the tensor before it")
    }

    func testAGapBetweenTensorsIsRefused() throws {
        let path = temporary(try S.tinyGGUF())
        let file = try GGUFFile(path: path)
        let b = file.tensors[3]
        // Moved one alignment further, still inside the file (the last tensor's data ends at the end).
        let bad = try patched(path) { bytes, f in setU64(&bytes, at: S.tensorInfoFields(bytes, f, b.name).offset, UInt64(b.offset + file.alignment)) }
        assertLoadError(try GGUFFile(path: bad), "tensor '\(b.name)'", "\(file.alignment) bytes that no tensor claims", "'\(file.tensors[2].name)'")
    }

    /// A Q4_1 tensor declared Q4_0 is 10% smaller than its data: the next tensor's offset, or the end of
    /// the file when it is the last, gives it away.
    func testAQ4_1TensorRelabelledQ4_0IsRefusedWhereverItIs() throws {
        let source = temporary(try S.tinyGGUF())
        let name = "blk.0.ffn_up.weight"  // [128, 64]: 256 blocks of 32, 5120 bytes as Q4_1
        for last in [false, true] {
            let q41 = temporary(try S.rewrite(source, metadata: { _ in }, replace: { info in
                info.name == name ? (.q4_1, S.q4_1Bytes(elements: info.elementCount, seed: 5)) : nil
            }, last: last ? name : nil))
            let file = try GGUFFile(path: q41)
            XCTAssertEqual(file.info(name)?.type, .q4_1)
            XCTAssertEqual(file.tensors.last?.name == name, last)
            XCTAssertNoThrow(try ModelLoader.load(q41), "the Q4_1 file itself is valid")

            let bad = try patched(q41) { bytes, f in
                let at = S.tensorInfoFields(bytes, f, name).type
                withUnsafeBytes(of: GGMLType.q4_0.rawValue.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
            }
            let phrase = last ? "claimed by no tensor" : "no tensor claims"
            assertLoadError(try GGUFFile(path: bad), "'\(name)' (Q4_0 [128, 64], 4608 bytes)", phrase)
            assertLoadError(try ModelLoader.load(bad), name, phrase)
        }
    }

    func testBytesAppendedAfterTheLastTensorAreRefusedButItsPaddingIsNot() throws {
        let path = temporary(try S.tinyGGUF())
        let file = try GGUFFile(path: path)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let last = file.tensors.last!
        let end = file.dataOffset + last.offset + last.byteCount
        // Cut to the unpadded end, or padded to the alignment: both valid.
        XCTAssertNoThrow(try GGUFFile(path: temporary(try S.write(Array(original[0..<end])))))
        let paddedEnd = (end - file.dataOffset + file.alignment - 1) / file.alignment * file.alignment + file.dataOffset
        let padded = Array(original[0..<min(end, original.count)]) + [UInt8](repeating: 0, count: paddedEnd - end)
        XCTAssertNoThrow(try GGUFFile(path: temporary(try S.write(padded))))
        let extra = padded + [UInt8](repeating: 0, count: file.alignment)
        assertLoadError(try GGUFFile(path: temporary(try S.write(extra))), "\(file.alignment) bytes after the last tensor '\(last.name)'", "claimed by no tensor")
    }

    func testTheReferenceModelIsLaidOutBackToBack() throws {
        let model = try GGUFTestSupport.openModel()  // opening runs the check
        XCTAssertEqual(model.tensors.first?.offset, 0)
    }
}
