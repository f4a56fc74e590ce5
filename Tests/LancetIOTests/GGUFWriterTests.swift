import Foundation
import XCTest
@testable import LancetIO
import LancetTensor

final class GGUFWriterTests: XCTestCase {
    /// One metadata value of every type, nested arrays and an empty array, in a deliberate order.
    private let everyType: [(String, GGUFValue)] = [
        ("t.u8", .uint8(255)), ("t.i8", .int8(-128)), ("t.u16", .uint16(65535)), ("t.i16", .int16(-32768)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.u64", .uint64(.max)), ("t.i64", .int64(.min)),
        ("t.f32", .float32(-1.5e-7)), ("t.f64", .float64(.pi)), ("t.true", .bool(true)), ("t.false", .bool(false)),
        ("t.string", .string("héllo, ✂️ surgeon")), ("t.empty", .string("")),
        ("a.strings", .array(.string, [.string("a"), .string(""), .string("ü")])),
        ("a.floats", .array(.float32, [.float32(1), .float32(-0.0), .float32(.infinity)])),
        ("a.empty", .array(.int64, [])),
        ("a.nested", .array(.array, [
            .array(.uint8, [.uint8(1), .uint8(2)]),
            .array(.array, [.array(.bool, [.bool(true)]), .array(.string, [])]),
        ])),
        ("z.last", .uint32(7)),
    ]

    private func ramp(_ shape: [Int], _ f: (Int) -> Float) -> Tensor {
        Tensor(shape: shape, (0..<shape.reduce(1, *)).map(f))
    }

    func testSyntheticFileRoundTripsEveryMetadataTypeAndEveryWritableTensorType() throws {
        var rng = SplitMix64(seed: 3)
        let f32 = ramp([3, 5]) { Float($0) * 0.37 - 2 }
        let f16 = ramp([2, 4]) { Float($0 - 4) * 0.125 }  // exactly representable in F16
        let bf16 = ramp([6]) { [1, -2, 0.5, 3.25, -0.0, 256][$0] }  // exactly representable in BF16
        let q8 = ramp([4, 64]) { _ in Float.random(in: -3...3, using: &rng) }
        var w = GGUFWriter(metadata: everyType)
        try w.add(name: "f32", tensor: f32)
        try w.add(name: "f16", tensor: f16, as: .f16)
        try w.add(name: "bf16", tensor: bf16, as: .bf16)
        try w.add(name: "q8", tensor: q8, as: .q8_0)
        try w.addRaw(name: "raw.q4_1", dimensions: [32, 2], type: .q4_1, bytes: (0..<40).map { UInt8($0) })
        let path = GGUFTestSupport.temporaryPath("synthetic.gguf")
        defer { unlink(path) }
        try w.write(to: path)

        let r = try GGUFFile(path: path)
        XCTAssertEqual(r.version, 3)
        XCTAssertEqual(r.alignment, 32)
        XCTAssertEqual(r.metadataEntries.map(\.key), everyType.map(\.0))
        for (got, want) in zip(r.metadataEntries, everyType) {
            // GGUFValue equality (numeric, so the sign of -0.0 is checked separately below).
            XCTAssertEqual(got.value, want.1, got.key)
        }
        if case let .array(_, floats) = r.metadata["a.floats"]!, case let .float32(z) = floats[1] {
            XCTAssertEqual(z.sign, .minus)
        } else { XCTFail("a.floats lost its shape") }
        XCTAssertEqual(r.tensors.map(\.name), ["f32", "f16", "bf16", "q8", "raw.q4_1"])
        XCTAssertEqual(r.tensors.map(\.type), [.f32, .f16, .bf16, .q8_0, .q4_1])
        for t in r.tensors { XCTAssertEqual(t.offset % 32, 0, t.name) }
        XCTAssertEqual(try r.tensor("f32"), f32)
        XCTAssertEqual(try r.tensor("f16"), f16)
        XCTAssertEqual(try r.tensor("bf16"), bf16)
        XCTAssertEqual(Array(r.rawBytes(of: r.info("raw.q4_1")!)), (0..<40).map { UInt8($0) })
        XCTAssertEqual(r.info("q8")!.dimensions, [64, 4])

        // Q8_0: within half a step of each block's f16-rounded scale, plus the scale's own rounding.
        let back = try r.tensor("q8")
        for b in 0..<(q8.count / 32) {
            let block = (0..<32).map { q8[flat: 32 * b + $0] }
            let d = Double(block.map { abs($0) }.max()!) / 127
            let d16 = Double(Float(Float16(Float(d))))
            for i in 0..<32 {
                let err = abs(Double(back[flat: 32 * b + i]) - Double(block[i]))
                XCTAssertLessThanOrEqual(err, 0.5 * d16 + 127 * abs(d - d16) + 1e-7, "block \(b) element \(i)")
            }
        }
    }

    /// Q8_0 bytes equal ggml's reference: d = amax / 127 stored as f16, q = round(x × (1/d)), ties away from zero.
    func testQ8_0EncodingFollowsTheReferenceRounding() throws {
        var rng = SplitMix64(seed: 8)
        var blocks: [[Float]] = [
            (0..<32).map { _ in Float.random(in: -1...1, using: &rng) },
            (0..<32).map { Float($0) - 15.5 },  // a ramp
            Array(repeating: 0, count: 32),  // zero block: d = 0, all quants 0
            (0..<32).map { $0 == 5 ? -4 : 0 },  // single negative extreme: q = −127
        ]
        blocks.append((0..<32).map { $0 == 0 ? 127 : Float($0 - 16) + 0.5 })  // d = 1: exact ties ±0.5 … ±15.5
        let values = blocks.flatMap { $0 }
        var bytes = [UInt8](repeating: 0, count: 34 * blocks.count)
        try values.withUnsafeBufferPointer { src in try bytes.withUnsafeMutableBytes { try GGMLQuantizer.encode(.q8_0, from: src, into: $0) } }
        for (b, x) in blocks.enumerated() {
            let amax = x.map { abs($0) }.max()!
            let d: Float = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            let dBits = Float16(d).bitPattern
            XCTAssertEqual(UInt16(bytes[34 * b]) | UInt16(bytes[34 * b + 1]) << 8, dBits, "block \(b) scale")
            for i in 0..<32 {
                let scaled = x[i] * id
                var q = Float(Int(scaled))  // truncate toward zero, then round half away from zero by hand
                if abs(scaled - q) >= 0.5 { q += scaled < 0 ? -1 : 1 }
                XCTAssertEqual(Int8(bitPattern: bytes[34 * b + 2 + i]), Int8(q), "block \(b) element \(i): \(x[i])")
            }
        }
        XCTAssertEqual(Int8(bitPattern: bytes[34 * 4 + 2 + 18]), 3, "2.5 rounds away from zero")
        XCTAssertEqual(Int8(bitPattern: bytes[34 * 4 + 2 + 13]), -3, "-2.5 rounds away from zero")
    }

    func testBF16EncodingRoundsToNearestEvenAndKeepsNaN() {
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(1), 0x3F80)
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie, even stays
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie, odd rounds up
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(.infinity), 0x7F80)
        XCTAssertTrue(Float(bitPattern: UInt32(GGMLQuantizer.bfloat16Bits(.nan)) << 16).isNaN)
        XCTAssertEqual(GGMLQuantizer.bfloat16Bits(.greatestFiniteMagnitude), 0x7F80)  // rounds up to infinity
    }

    func testCustomAlignmentIsRecordedAndRespected() throws {
        var w = GGUFWriter(metadata: [("general.name", .string("aligned"))], alignment: 64)
        XCTAssertEqual(w.metadata.last?.key, "general.alignment")
        try w.add(name: "a", tensor: ramp([3]) { Float($0) })
        try w.add(name: "b", tensor: ramp([32]) { Float($0) }, as: .q8_0)
        try w.add(name: "c", tensor: ramp([5]) { -Float($0) }, as: .f16)
        let path = GGUFTestSupport.temporaryPath("aligned.gguf")
        defer { unlink(path) }
        try w.write(to: path)
        let r = try GGUFFile(path: path)
        XCTAssertEqual(r.alignment, 64)
        XCTAssertEqual(r.dataOffset % 64, 0)
        XCTAssertEqual(r.tensors.map(\.offset), [0, 64, 128])
        XCTAssertEqual(try r.tensor("c").scalars, [0, -1, -2, -3, -4])
        let size = try MappedFile(path: path).size
        XCTAssertEqual(size % 64, 0)

        // Alignment stated in the metadata wins and is not duplicated.
        let stated = GGUFWriter(metadata: [("general.alignment", .uint32(16))])
        XCTAssertEqual(stated.alignment, 16)
        XCTAssertEqual(stated.metadata.count, 1)
    }

    func testOverwriteFalseRefusesAnExistingFileAndLeavesItAlone() throws {
        let path = GGUFTestSupport.temporaryPath("exists.gguf")
        defer { unlink(path) }
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path))
        var w = GGUFWriter()
        try w.add(name: "x", tensor: ramp([2]) { Float($0) })
        XCTAssertThrowsError(try w.write(to: path, overwrite: false)) { e in
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("already exists"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "keep")
        try w.write(to: path, overwrite: true)
        XCTAssertEqual(try GGUFFile(path: path).tensors.map(\.name), ["x"])
    }

    func testWriterRejectsInvalidTensorsAndMetadataNamingTheProblem() throws {
        var w = GGUFWriter(metadata: [("k", .uint8(1)), ("bad", .array(.uint32, [.uint32(1), .string("x")]))])
        try w.add(name: "x", tensor: ramp([2]) { Float($0) })
        assertGGUFError(try w.add(name: "x", tensor: ramp([2]) { Float($0) }), path: GGUFWriter.errorPath, "'x'", "twice")
        assertGGUFError(try w.add(name: "q", tensor: ramp([2, 31]) { Float($0) }, as: .q8_0), path: GGUFWriter.errorPath, "row length 31", "Q8_0")
        assertGGUFError(try w.add(name: "q2", tensor: ramp([256]) { Float($0) }, as: .q2_K), path: GGUFWriter.errorPath, "cannot encode Q2_K")
        assertGGUFError(try w.add(name: "r5", tensor: ramp([1, 1, 1, 1, 2]) { Float($0) }), path: GGUFWriter.errorPath, "dimensions")
        assertGGUFError(try w.addRaw(name: "raw", dimensions: [32], type: .q4_0, bytes: [0, 1]), path: GGUFWriter.errorPath, "2 bytes given", "takes 18")

        let path = GGUFTestSupport.temporaryPath("invalid.gguf")
        assertGGUFError(try w.write(to: path), path: path, "metadata 'bad'", "string at index 1")
        w.metadata[1] = (key: "k", value: .string("again"))
        assertGGUFError(try w.write(to: path), path: path, "'k' appears twice")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))

        var misaligned = GGUFWriter(alignment: 64)
        misaligned.metadata.removeAll()
        assertGGUFError(try misaligned.write(to: path), path: path, "'general.alignment' is absent", "aligns to 64")
        misaligned.metadata = [(key: "general.alignment", value: .uint32(32))]
        assertGGUFError(try misaligned.write(to: path), path: path, "'general.alignment' is 32", "aligns to 64")

        var nan = GGUFWriter()
        try nan.add(name: "n", tensor: ramp([64]) { $0 == 40 ? .nan : 1 }, as: .q8_0)
        assertGGUFError(try nan.write(to: path), path: path, "tensor 'n'", "element 40 is nan")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "a failed write must leave no file")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.hasPrefix(URL(fileURLWithPath: path).lastPathComponent) }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    /// Tensors larger than one encoding chunk, with a row length that does not divide the chunk, round-trip.
    func testLargeTensorsAreEncodedChunkByChunk() throws {
        var rng = SplitMix64(seed: 11)
        let big = ramp([700, 96]) { _ in Float.random(in: -1...1, using: &rng) }
        var w = GGUFWriter()
        try w.add(name: "big.f32", tensor: big)
        try w.add(name: "big.q8", tensor: big, as: .q8_0)
        let path = GGUFTestSupport.temporaryPath("big.gguf")
        defer { unlink(path) }
        try w.write(to: path)
        let r = try GGUFFile(path: path)
        XCTAssertEqual(try r.tensor("big.f32"), big)
        // The file's Q8_0 bytes equal an encoding of the whole tensor in one call.
        var whole = [UInt8](repeating: 0, count: GGMLType.q8_0.byteCount(elements: big.count))
        try big.withUnsafeBufferPointer { src in try whole.withUnsafeMutableBytes { try GGMLQuantizer.encode(.q8_0, from: src, into: $0) } }
        XCTAssertEqual(Array(r.rawBytes(of: r.info("big.q8")!)), whole)
    }
}
