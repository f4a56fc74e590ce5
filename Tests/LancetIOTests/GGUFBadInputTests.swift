import Foundation
import XCTest
@testable import LancetIO
import LancetTensor

/// Malformed files: each must throw a `GGUFError` that names the file and the problem, quickly, without
/// crashing or allocating in proportion to a corrupt count.
final class GGUFBadInputTests: XCTestCase {
    private let path = "bad.gguf"

    /// A small valid file: two metadata entries and one 32×2 F32 tensor, built field by field.
    /// `tensorInfo` replaces the tensor description, `data` the tensor data size.
    private func smallFile(metadata: ((inout GGUFBytes) -> Void)? = nil, metadataCount: UInt64 = 2,
                           tensorInfo: ((inout GGUFBytes) -> Void)? = nil, tensorCount: UInt64 = 1, dataBytes: Int = 256) -> [UInt8] {
        var b = GGUFBytes()
        b.header(tensors: tensorCount, metadata: metadataCount)
        if let metadata { metadata(&b) } else {
            b.string("general.architecture"); b.u32(8); b.string("llama")
            b.string("x"); b.u32(4); b.u32(7)
        }
        if let tensorInfo { tensorInfo(&b) } else { b.tensorInfo("w", dims: [32, 2], type: 0, offset: 0) }
        b.pad()
        b.bytes += (0..<dataBytes).map { UInt8(truncatingIfNeeded: $0) }
        return b.bytes
    }

    func testTheSmallFileIsValid() throws {
        let f = try parseGGUF(smallFile(), path: path)
        XCTAssertEqual(f.metadataEntries.map(\.key), ["general.architecture", "x"])
        XCTAssertEqual(try f.tensor("w").shape, [2, 32])
    }

    // MARK: Truncation

    func testEveryTruncationOfASmallFileThrows() throws {
        let full = smallFile()
        let dataEnd = full.count  // the tensor's data ends exactly at the end
        for cut in 0..<dataEnd {
            let phrase = cut < 4 ? "only \(cut) bytes" : "truncated"
            assertGGUFError(try parseGGUF(Array(full[0..<cut]), path: path), path: path, phrase)
        }
    }

    func testTruncationsOfTheReferenceModelThrowInTheHeaderAndInTheData() throws {
        let model = try GGUFTestSupport.openModel()
        let mapped = try MappedFile(path: GGUFTestSupport.modelPath)
        let last = model.tensors.max { $0.offset < $1.offset }!
        let dataEnd = model.dataOffset + last.offset + last.byteCount
        var rng = SplitMix64(seed: 7)
        var cuts = [0, 1, 3, 4, 7, 8, 15, 16, 23, 24, 100, model.dataOffset - 1, model.dataOffset, model.dataOffset + 1,
                    model.dataOffset + 12345, (model.dataOffset + dataEnd) / 2, dataEnd - 1]
        cuts += (0..<150).map { _ in Int.random(in: 0..<model.dataOffset, using: &rng) }
        cuts += (0..<30).map { _ in Int.random(in: model.dataOffset..<dataEnd, using: &rng) }
        for cut in cuts {
            let prefix = MappedFile(viewing: UnsafeRawBufferPointer(rebasing: mapped.bytes[0..<cut]), owner: mapped, path: "cut-at-\(cut).gguf")
            let expected = cut < 4 ? "only" : cut >= model.dataOffset ? "runs past the end of the file" : "truncated"
            assertGGUFError(try GGUFFile(mapped: prefix), path: "cut-at-\(cut).gguf", expected)
        }
        // Cutting only the final padding keeps every tensor whole.
        if dataEnd < mapped.size {
            let whole = MappedFile(viewing: UnsafeRawBufferPointer(rebasing: mapped.bytes[0..<dataEnd]), owner: mapped, path: "unpadded.gguf")
            XCTAssertEqual(try GGUFFile(mapped: whole).tensors.count, model.tensors.count)
        }
    }

    // MARK: Identity

    func testWrongMagicAndUnknownVersionsAreRejected() {
        var b = GGUFBytes()
        b.header(magic: "GGML", tensors: 0, metadata: 0)
        assertGGUFError(try parseGGUF(b.bytes, path: path), path: path, "not a GGUF file", "magic")
        for version: UInt32 in [0, 1, 4, 0xFFFF_FFFF] {
            var v = GGUFBytes()
            v.header(version: version, tensors: 0, metadata: 0)
            assertGGUFError(try parseGGUF(v.bytes, path: path), path: path, "unsupported GGUF version \(version)")
        }
        var big = GGUFBytes()
        big.header(version: UInt32(3).byteSwapped, tensors: 0, metadata: 0)
        assertGGUFError(try parseGGUF(big.bytes, path: path), path: path, "big-endian")
        var empty = GGUFBytes()
        empty.header(tensors: 0, metadata: 0)
        XCTAssertNoThrow(try parseGGUF(empty.bytes, path: path), "a header with no tensors and no metadata is valid")
    }

    // MARK: Tensor descriptions

    func testTensorDataRunningPastTheFileIsRejected() {
        assertGGUFError(try parseGGUF(smallFile(dataBytes: 255), path: path), path: path, "tensor 'w'", "runs past the end")
        let farOffset = smallFile(tensorInfo: { $0.tensorInfo("w", dims: [32, 2], type: 0, offset: 1 << 20) })
        assertGGUFError(try parseGGUF(farOffset, path: path), path: path, "tensor 'w'", "runs past the end")
        let hugeOffset = smallFile(tensorInfo: { $0.tensorInfo("w", dims: [32, 2], type: 0, offset: UInt64.max - 31) })
        assertGGUFError(try parseGGUF(hugeOffset, path: path), path: path, "tensor 'w'", "offset")
        let misaligned = smallFile(tensorInfo: { $0.tensorInfo("w", dims: [32, 2], type: 0, offset: 4) })
        assertGGUFError(try parseGGUF(misaligned, path: path), path: path, "tensor 'w'", "not a multiple of the alignment 32")
        let tooBig = smallFile(tensorInfo: { $0.tensorInfo("w", dims: [32, 1 << 30], type: 0, offset: 0) })
        assertGGUFError(try parseGGUF(tooBig, path: path), path: path, "tensor 'w'", "runs past the end")
    }

    func testUnsupportedAndUnknownTensorTypes() throws {
        // IQ2_XXS is a known type Lancet cannot dequantise: the file opens, reading the tensor fails.
        let iq = smallFile(tensorInfo: { $0.tensorInfo("iq", dims: [256], type: 16, offset: 0) }, dataBytes: 66)
        let f = try parseGGUF(iq, path: path)
        XCTAssertEqual(f.info("iq")?.type, .iq2_xxs)
        assertGGUFError(try f.tensor("iq"), path: path, "tensor 'iq'", "IQ2_XXS", "not supported")
        assertGGUFError(try f.tensor("nope"), path: path, "no tensor named 'nope'")
        for raw: UInt32 in [4, 31, 99, .max] {
            let unknown = smallFile(tensorInfo: { $0.tensorInfo("u", dims: [32], type: raw, offset: 0) })
            assertGGUFError(try parseGGUF(unknown, path: path), path: path, "tensor 'u'", "unknown ggml type \(raw)")
        }
        let ragged = smallFile(tensorInfo: { $0.tensorInfo("r", dims: [33], type: 8, offset: 0) })
        assertGGUFError(try parseGGUF(ragged, path: path), path: path, "tensor 'r'", "row length 33", "Q8_0")
    }

    // MARK: Metadata

    func testNonUTF8StringsAreRejected() {
        let value = smallFile(metadata: { $0.string("k"); $0.u32(8); $0.string([0x61, 0xC3, 0x28]) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(value, path: path), path: path, "metadata 'k'", "not valid UTF-8")
        let key = smallFile(metadata: { $0.string([0xFF, 0xFE]); $0.u32(4); $0.u32(1) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(key, path: path), path: path, "key of metadata entry 0", "not valid UTF-8")
        var b = GGUFBytes()
        b.header(tensors: 1, metadata: 0)
        b.string([0x80]); b.u32(1); b.u64(32); b.u32(0); b.u64(0)
        assertGGUFError(try parseGGUF(b.bytes, path: path), path: path, "name of tensor 0", "not valid UTF-8")
    }

    func testUnknownValueTypesAreRejected() {
        let scalar = smallFile(metadata: { $0.string("k"); $0.u32(13); $0.u32(0) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(scalar, path: path), path: path, "metadata 'k'", "unknown value type 13")
        let element = smallFile(metadata: { $0.string("a"); $0.u32(9); $0.u32(77); $0.u64(1); $0.u32(0) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(element, path: path), path: path, "metadata 'a'", "unknown array element type 77")
        let bool = smallFile(metadata: { $0.string("b"); $0.u32(7); $0.u8(2) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(bool, path: path), path: path, "metadata 'b'", "boolean byte is 2")
    }

    func testHugeCountsAreRejectedWithoutAllocating() {
        let start = Date()
        for count: UInt64 in [1 << 40, .max, .max / 24] {
            var t = GGUFBytes()
            t.header(tensors: count, metadata: 0)
            assertGGUFError(try parseGGUF(t.bytes, path: path), path: path, "tensor count is \(count)")
            var m = GGUFBytes()
            m.header(tensors: 0, metadata: count)
            assertGGUFError(try parseGGUF(m.bytes, path: path), path: path, "metadata count is \(count)")
            let string = smallFile(metadata: { $0.string("s"); $0.u32(8); $0.u64(count) }, metadataCount: 1)
            assertGGUFError(try parseGGUF(string, path: path), path: path, "length of metadata 's' is \(count)")
            let key = smallFile(metadata: { $0.u64(count) }, metadataCount: 1)
            assertGGUFError(try parseGGUF(key, path: path), path: path, "length of key of metadata entry 0")
            for elementType: UInt32 in [0, 8, 9] {
                let array = smallFile(metadata: { $0.string("a"); $0.u32(9); $0.u32(elementType); $0.u64(count) }, metadataCount: 1)
                assertGGUFError(try parseGGUF(array, path: path), path: path, "element count of metadata 'a' is \(count)")
            }
        }
        // Counts that fit the file are parsed, and stop at the first item that does not.
        let arrays = smallFile(metadata: { $0.string("a"); $0.u32(9); $0.u32(9); $0.u64(20); $0.u32(4); $0.u64(1 << 40) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(arrays, path: path), path: path, "element count of metadata 'a'[0]")
        let dimension = smallFile(tensorInfo: { $0.tensorInfo("d", dims: [32, 1 << 62], type: 0, offset: 0) })
        assertGGUFError(try parseGGUF(dimension, path: path), path: path, "tensor 'd'", "dimension 1 is \(UInt64(1) << 62)")
        let product = smallFile(tensorInfo: { $0.tensorInfo("p", dims: [1 << 39, 1 << 39, 1 << 39], type: 0, offset: 0) })
        assertGGUFError(try parseGGUF(product, path: path), path: path, "tensor 'p'", "element count overflows")
        for n: UInt32 in [0, 5, .max] {
            var b = GGUFBytes()
            b.header(tensors: 1, metadata: 0)
            b.string("n"); b.u32(n); b.u64(32); b.u32(0); b.u64(0)
            assertGGUFError(try parseGGUF(b.bytes, path: path), path: path, "tensor 'n'", "\(n) dimensions")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "rejecting huge counts must be immediate")
    }

    func testStructuralErrorsInMetadataAreRejected() {
        let twice = smallFile(metadata: { $0.string("k"); $0.u32(4); $0.u32(1); $0.string("k"); $0.u32(4); $0.u32(2) })
        assertGGUFError(try parseGGUF(twice, path: path), path: path, "metadata key 'k' appears twice")
        let badAlignment = smallFile(metadata: { $0.string("general.alignment"); $0.u32(4); $0.u32(24) }, metadataCount: 1)
        assertGGUFError(try parseGGUF(badAlignment, path: path), path: path, "general.alignment", "power of two")
        let textAlignment = smallFile(metadata: { $0.string("general.alignment"); $0.u32(8); $0.string("32") }, metadataCount: 1)
        assertGGUFError(try parseGGUF(textAlignment, path: path), path: path, "general.alignment", "power of two")
        let deep = smallFile(metadata: { b in
            b.string("deep"); b.u32(9)
            for _ in 0..<9 { b.u32(9); b.u64(1) }
            b.u32(4); b.u64(1); b.u32(0)
        }, metadataCount: 1)
        assertGGUFError(try parseGGUF(deep, path: path), path: path, "metadata 'deep'", "nested deeper than 8")
        var dup = GGUFBytes()
        dup.header(tensors: 2, metadata: 0)
        dup.tensorInfo("t", dims: [1], type: 0, offset: 0)
        dup.tensorInfo("t", dims: [1], type: 0, offset: 32)
        dup.pad()
        dup.bytes += [UInt8](repeating: 0, count: 64)
        assertGGUFError(try parseGGUF(dup.bytes, path: path), path: path, "tensor 't' appears twice")
    }

    func testFileSystemErrorsNameTheFile() {
        assertGGUFError(try GGUFFile(path: "/nonexistent/model.gguf"), path: "/nonexistent/model.gguf", "No such file")
        assertGGUFError(try GGUFFile(path: "/tmp"), path: "/tmp", "not a regular file")
    }
}

/// The reader's UTF-8 validator agrees with the standard library's on edge cases and random bytes.
final class GGUFUTF8ValidationTests: XCTestCase {
    private func agree(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let ours = bytes.withUnsafeBufferPointer { GGUFByteReader.isValidUTF8($0) }
        let standard = bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) != nil }
        XCTAssertEqual(ours, standard, "\(bytes.map { String($0, radix: 16) })", file: file, line: line)
    }

    func testValidatorAgreesWithTheStandardLibrary() {
        let edges: [[UInt8]] = [
            [], [0x00], [0x7F], [0x80], [0xC0, 0x80], [0xC1, 0xBF], [0xC2, 0x80], [0xDF, 0xBF], [0xC2],
            [0xE0, 0x9F, 0x80], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xE1, 0x80],
            [0xF0, 0x8F, 0x80, 0x80], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE2, 0x82, 0xAC, 0x41], [0x41, 0xE2, 0x82], [0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9],
            Array("Ġthe ✂️ naïve".utf8),
        ]
        for e in edges { agree(e) }
        var rng = SplitMix64(seed: 8)
        for _ in 0..<20000 {
            let n = Int.random(in: 1...6, using: &rng)
            // Bias towards bytes that form (or almost form) multi-byte sequences.
            agree((0..<n).map { _ in
                Bool.random(using: &rng) ? UInt8.random(in: 0x80...0xBF, using: &rng) : UInt8.random(in: 0...255, using: &rng)
            })
        }
    }
}
