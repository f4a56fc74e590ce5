import Foundation
import XCTest
import LancetTensor
@testable import LancetIO

final class SafetensorsRoundTripTests: XCTestCase {
    static let awkwardShapes: [[Int]] = [[], [1], [0], [3, 5, 7], [2, 0, 3], [1, 1, 1, 1], [17], [4, 9]]

    func testF32RoundTripIsBitExactForAwkwardShapesAndSpecialValues() throws {
        let folder = try makeTemporaryFolder("st-f32")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = TestRNG(seed: 1)
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, Float(bitPattern: 0x7FC0_1234)]
        var writer = SafetensorsWriter(metadata: ["note": "quote \" backslash \\ newline \n tab \t", "lancet.seed": "1"])
        var expected: [String: Tensor] = [:]
        for (i, shape) in Self.awkwardShapes.enumerated() {
            var k = 0
            let t = makeTensor(shape) {
                defer { k += 1 }
                return k < specials.count && i == 3 ? specials[k] : Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            }
            writer.add("t\(i).weight", t)
            expected["t\(i).weight"] = t
        }
        let path = folder + "/a.safetensors"
        try writer.write(to: path)

        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(Set(file.tensorNames), Set(expected.keys))
        XCTAssertEqual(file.metadata["note"], "quote \" backslash \\ newline \n tab \t")
        XCTAssertEqual(file.metadata["format"], "pt", "transformers refuses files without format=pt")
        XCTAssertEqual(file.dataOffset % 8, 0, "header padded to a multiple of 8")
        for (name, t) in expected {
            let info = try XCTUnwrap(file.info(name))
            XCTAssertEqual(info.dtype, .f32)
            XCTAssertEqual(info.shape, t.shape)
            XCTAssertEqual(info.byteCount, 4 * t.count)
            let back = try file.tensor(name)
            XCTAssertEqual(back.shape, t.shape, name)
            XCTAssertEqual(back.scalars.map(\.bitPattern), t.scalars.map(\.bitPattern), name)
            XCTAssertTrue(back.isView, "aligned F32 is read without copying")
        }
    }

    func testF16AndBF16RoundTripIsExactForRepresentableValues() throws {
        let folder = try makeTemporaryFolder("st-half")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = TestRNG(seed: 2)
        var writer = SafetensorsWriter()
        var expected: [String: (Tensor, SafetensorsDType)] = [:]
        for (i, shape) in Self.awkwardShapes.enumerated() {
            // Random bit patterns of each format (NaNs excluded: their payloads are not preserved by design).
            let f16 = makeTensor(shape) {
                while true { let v = HalfPrecision.float(float16Bits: UInt16(truncatingIfNeeded: rng.next())); if !v.isNaN { return v } }
            }
            let bf16 = makeTensor(shape) {
                while true { let v = HalfPrecision.float(bfloat16Bits: UInt16(truncatingIfNeeded: rng.next())); if !v.isNaN { return v } }
            }
            writer.add("h\(i)", f16, as: .f16)
            writer.add("b\(i)", bf16, as: .bf16)
            expected["h\(i)"] = (f16, .f16)
            expected["b\(i)"] = (bf16, .bf16)
        }
        writer.add("wide", Tensor(shape: [3], [1, 2, 3]))  // F32 beside 16-bit data stays aligned
        let path = folder + "/half.safetensors"
        try writer.write(to: path)
        let file = try SafetensorsFile(path: path)
        for (name, (t, dtype)) in expected {
            XCTAssertEqual(file.info(name)?.dtype, dtype)
            XCTAssertEqual(file.info(name)?.byteCount, 2 * t.count)
            XCTAssertEqual(try file.tensor(name).scalars.map(\.bitPattern), t.scalars.map(\.bitPattern), name)
        }
        XCTAssertTrue(try file.tensor("wide").isView)
        XCTAssertEqual(try file.tensor("wide").scalars, [1, 2, 3])
    }

    func testOutputIsDeterministicWhateverTheOrderOfAdding() throws {
        let folder = try makeTemporaryFolder("st-order")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tensors: [(String, Tensor, SafetensorsDType)] = [
            ("b", Tensor(shape: [2], [1, 2]), .bf16), ("a", Tensor(shape: [3], [3, 4, 5]), .f32),
            ("c", Tensor(shape: [1], [6]), .f16), ("aa", Tensor(shape: [], [7]), .f32),
        ]
        var forward = SafetensorsWriter(metadata: ["k": "v"]), backward = SafetensorsWriter(metadata: ["k": "v"])
        for (n, t, d) in tensors { forward.add(n, t, as: d) }
        for (n, t, d) in tensors.reversed() { backward.add(n, t, as: d) }
        try forward.write(to: folder + "/1.safetensors")
        try backward.write(to: folder + "/2.safetensors")
        let one = try Data(contentsOf: URL(fileURLWithPath: folder + "/1.safetensors"))
        XCTAssertEqual(one, try Data(contentsOf: URL(fileURLWithPath: folder + "/2.safetensors")))
        XCTAssertEqual(try SafetensorsFile(path: folder + "/1.safetensors").tensorNames, ["a", "aa", "b", "c"])
        let headerLength = Int(one.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        let header = String(decoding: one[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"), header)
        XCTAssertTrue(header.hasSuffix(" ") || header.hasSuffix("}"))
    }

    func testBF16RoundsToNearestEvenLikeThePlainFormula() {
        /// Independent reference: pick the nearer of the two neighbouring bfloat16 values in Double arithmetic,
        /// ties to the even one, with +inf standing at 2^128 as IEEE rounding prescribes.
        func reference(_ x: Float) -> UInt16 {
            let bits = x.bitPattern
            let low = bits & 0xFFFF_0000, high = low &+ 0x1_0000
            func value(_ b: UInt32) -> Double {
                let f = Float(bitPattern: b)
                return f.isInfinite || f.isNaN ? (b >> 31 == 1 ? -1 : 1) * 0x1p128 : Double(f)
            }
            let dl = abs(Double(x) - value(low)), dh = abs(value(high) - Double(x))
            if dl < dh { return UInt16(low >> 16) }
            if dh < dl { return UInt16(high >> 16) }
            return (low >> 16) & 1 == 0 ? UInt16(low >> 16) : UInt16(high >> 16)
        }
        var cases: [Float] = [1, -1, 0, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                              .leastNonzeroMagnitude, .leastNormalMagnitude, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                              Float(bitPattern: 0x3F80_7FFF), Float(bitPattern: 0x3F80_8001), Float(bitPattern: 0x7F7F_8000), Float(bitPattern: 0x7F7F_7FFF),
                              Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x0001_8000), Float(bitPattern: 0x807F_FFFF)]
        var rng = TestRNG(seed: 3)
        for _ in 0..<200_000 { cases.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        var checked = 0
        for x in cases where !x.isNaN {
            let got = HalfPrecision.bfloat16Bits(x)
            if got != reference(x) { return XCTFail("bf16(\(x), bits 0x\(String(x.bitPattern, radix: 16))): got 0x\(String(got, radix: 16)), expected 0x\(String(reference(x), radix: 16))") }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 190_000)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80, "tie goes to even")
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82, "tie goes to even")
        XCTAssertTrue(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(.nan)).isNaN)
        XCTAssertTrue(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F80_0001))).isNaN, "signalling NaN does not become inf")
    }

    func testBF16FileHoldsTheRoundedBits() throws {
        let folder = try makeTemporaryFolder("st-bf16bits")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let values: [Float] = [Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), 1.0 / 3.0, -3.4e38]
        var writer = SafetensorsWriter()
        writer.add("x", Tensor(shape: [4], values), as: .bf16)
        try writer.write(to: folder + "/x.safetensors")
        let file = try SafetensorsFile(path: folder + "/x.safetensors")
        let raw = file.rawBytes(of: file.info("x")!)
        let stored = (0..<4).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        XCTAssertEqual(stored, values.map(HalfPrecision.bfloat16Bits))
        XCTAssertEqual(stored[0], 0x3F80)
        XCTAssertEqual(stored[3], 0xFF80, "-3.4e38 is past the largest bfloat16 (≈3.39e38) by more than half an ulp: -inf")
    }

    func testF64IsConvertedAndIntegerDTypesAreListedButNotReadableAsFloat() throws {
        let folder = try makeTemporaryFolder("st-dtypes")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let doubles: [Double] = [1.5, -2.25]
        let ints: [Int64] = [7, -9, 11]
        let data = doubles.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
            + ints.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        let header = #"{"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"ids":{"dtype":"I64","shape":[3],"data_offsets":[16,40]}}"#
        let path = folder + "/mixed.safetensors"
        try writeBytes(safetensorsBytes(header: header, data: data), to: path)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.tensorNames, ["d", "ids"])
        XCTAssertEqual(try file.tensor("d").scalars, [1.5, -2.25])
        XCTAssertEqual(file.info("ids")?.dtype, .i64)
        XCTAssertEqual(file.info("ids")?.shape, [3])
        let raw = file.rawBytes(of: file.info("ids")!)
        XCTAssertEqual((0..<3).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }, ints)
        assertSafetensorsError(try file.tensor("ids"), path: path, tensor: "ids", "I64 cannot be read as Float32")
        assertSafetensorsError(try file.tensor("nope"), path: path, tensor: "nope", "no such tensor")
    }

    func testUnalignedF32IsCopiedCorrectly() throws {
        let folder = try makeTemporaryFolder("st-unaligned")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Header of 3 bytes past a multiple of 4 puts the F32 data at an odd address.
        let values: [Float] = [1, -2, 3.5]
        var header = #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#
        while (8 + header.utf8.count) % 4 != 1 { header += " " }
        let path = folder + "/u.safetensors"
        try writeBytes(safetensorsBytes(header: header, data: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }), to: path)
        let t = try SafetensorsFile(path: path).tensor("x")
        XCTAssertFalse(t.isView)
        XCTAssertEqual(t.scalars, values)
    }

    func testEmptyFileHeaderIsAValidEmptyFile() throws {
        let folder = try makeTemporaryFolder("st-empty")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try SafetensorsWriter(metadata: [:]).write(to: folder + "/e.safetensors")
        let file = try SafetensorsFile(path: folder + "/e.safetensors")
        XCTAssertEqual(file.tensorNames, [])
        XCTAssertEqual(file.metadata, ["format": "pt"])
    }

    func testWriteWithoutOverwriteRefusesAnExistingFile() throws {
        let folder = try makeTemporaryFolder("st-overwrite")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var writer = SafetensorsWriter()
        writer.add("x", Tensor(shape: [1], [1]))
        try writer.write(to: folder + "/x.safetensors")
        XCTAssertThrowsError(try writer.write(to: folder + "/x.safetensors", overwrite: false)) { XCTAssertTrue("\($0)".contains("already exists")) }
    }
}
