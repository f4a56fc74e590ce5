import Foundation
import XCTest
@testable import LancetIO
import LancetTensor

/// Checks on the reference model (SmolLM2-135M-Instruct, Q4_1 with one Q8_0 and F32 norms).
final class GGUFRealModelTests: XCTestCase {
    func testEveryTensorOfTheReferenceModelDequantisesToFiniteValues() throws {
        let file = try GGUFTestSupport.openModel()
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(Set(file.tensors.map(\.type)), [.f32, .q4_1, .q8_0])
        let start = Date()
        var elements = 0
        for info in file.tensors {
            let t = try file.tensor(info)
            XCTAssertEqual(t.shape, info.shape)
            elements += t.count
            let finite = t.withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) }
            XCTAssertTrue(finite, "\(info.name) has non-finite values")
        }
        print("dequantised \(file.tensors.count) tensors, \(elements) elements, in \(String(format: "%.3f", Date().timeIntervalSince(start))) s")
    }

    /// `blk.0.attn_q.weight` is Q4_1: each 20-byte block is f16 d, f16 m, then 16 bytes whose low nibbles
    /// are elements 0–15 and high nibbles elements 16–31; value = d × q + m.
    func testFirstAttentionQueryBlocksMatchTheQ4_1Formula() throws {
        let file = try GGUFTestSupport.openModel()
        let info = try XCTUnwrap(file.info("blk.0.attn_q.weight"))
        XCTAssertEqual(info.type, .q4_1)
        XCTAssertEqual(info.shape, [576, 576])
        let t = try file.tensor(info)
        let raw = Array(file.rawBytes(of: info))
        let blocks = info.elementCount / 32
        for b in [0, 1, 2, 17, blocks / 2, blocks - 1] {
            let p = 20 * b
            let d = GGUFTestSupport.f16(UInt16(raw[p]) | UInt16(raw[p + 1]) << 8)
            let m = GGUFTestSupport.f16(UInt16(raw[p + 2]) | UInt16(raw[p + 3]) << 8)
            for i in 0..<32 {
                let byte = raw[p + 4 + i % 16]
                let q = i < 16 ? byte & 0x0F : byte >> 4
                let expected = d * Double(q) + m
                XCTAssertEqual(Double(t[flat: 32 * b + i]), expected, accuracy: 1e-6 * (abs(d) * 15 + abs(m)), "block \(b) element \(i)")
            }
        }
    }

    /// Rewriting the model with its metadata in order and its tensors' bytes copied gives the same file.
    func testRewritingTheReferenceModelRawIsBitExact() throws {
        let file = try GGUFTestSupport.openModel()
        var writer = GGUFWriter(metadata: file.metadataEntries.map { ($0.key, $0.value) })
        for info in file.tensors { try writer.addRaw(info, of: file) }
        let path = GGUFTestSupport.temporaryPath("roundtrip.gguf")
        defer { unlink(path) }
        try writer.write(to: path, overwrite: false)

        let back = try GGUFFile(path: path)
        XCTAssertEqual(back.version, 3)
        XCTAssertEqual(back.metadataEntries.map(\.key), file.metadataEntries.map(\.key))
        for (a, b) in zip(back.metadataEntries, file.metadataEntries) { XCTAssertEqual(a.value, b.value, a.key) }
        XCTAssertEqual(back.tensors, file.tensors)
        for info in file.tensors {
            XCTAssertTrue(back.rawBytes(of: info).elementsEqual(file.rawBytes(of: info)), info.name)
        }
        // The original was written by ggml with the same layout rules, so the files are identical.
        let original = try MappedFile(path: GGUFTestSupport.modelPath), copy = try MappedFile(path: path)
        XCTAssertEqual(copy.size, original.size)
        XCTAssertTrue(copy.bytes.elementsEqual(original.bytes))
    }
}
