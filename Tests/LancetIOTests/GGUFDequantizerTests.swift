import XCTest
@testable import LancetIO

/// Each format is checked on blocks built byte by byte from "logical" contents (scales, minimums, one
/// quant per element), packed as ggml-common.h lays them out. The expected values come straight from the
/// format's formula on the logical contents, element by element, in Double — a second reading of the
/// definition that shares no code with the dequantiser.
final class GGUFDequantizerTests: XCTestCase {
    // MARK: Helpers

    private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    private func f16(_ bits: UInt16) -> Double { GGUFTestSupport.f16(bits) }

    /// Dequantises `blocks` (concatenated) and compares with `expected`, allowing float rounding relative
    /// to `magnitude` (the size of the formula's terms) for each element.
    private func check(_ type: GGMLType, _ bytes: [UInt8], _ expected: [Double], _ magnitude: [Double], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(bytes.count, expected.count / type.blockSize * type.blockBytes, "test built the wrong number of bytes", file: file, line: line)
        var got = [Float](repeating: .nan, count: expected.count)
        try bytes.withUnsafeBytes { src in
            try got.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(type, from: src, into: $0) }
        }
        for i in 0..<expected.count {
            let err = abs(Double(got[i]) - expected[i])
            if err > 1e-6 * magnitude[i] + 1e-30 {
                XCTFail("\(type.name) element \(i) (block \(i / type.blockSize)): got \(got[i]), expected \(expected[i])", file: file, line: line)
                return
            }
        }
    }

    private func randoms(_ n: Int, _ range: ClosedRange<Int>, _ rng: inout SplitMix64) -> [Int] {
        (0..<n).map { _ in Int.random(in: range, using: &rng) }
    }

    // MARK: Plain types

    func testPlainTypesDecodeTheirBitPatterns() throws {
        let f16Bits: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x3555]
        let f16Values: [Double] = [1, -2, 65504, 5.960464477539063e-08, -0.0, .infinity, 0.333251953125]
        var got = [Float](repeating: 0, count: f16Bits.count)
        try f16Bits.flatMap(le16).withUnsafeBytes { src in
            try got.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(.f16, from: src, into: $0) }
        }
        XCTAssertEqual(got.map(Double.init), f16Values)

        let bf16Bits: [UInt16] = [0x3F80, 0xC040, 0x7F7F, 0x0000, 0xFF80]
        let bf16Values: [Double] = [1, -3, 3.3895313892515355e38, 0, -.infinity]
        got = [Float](repeating: 0, count: bf16Bits.count)
        try bf16Bits.flatMap(le16).withUnsafeBytes { src in
            try got.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(.bf16, from: src, into: $0) }
        }
        XCTAssertEqual(got.map(Double.init), bf16Values)

        let f32Values: [Float] = [1.5, -0.0, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        got = [Float](repeating: 0, count: f32Values.count)
        try f32Values.withUnsafeBytes { src in
            try got.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(.f32, from: src, into: $0) }
        }
        XCTAssertEqual(got.map(\.bitPattern), f32Values.map(\.bitPattern))
    }

    // MARK: Legacy 32-element formats

    func testQ4_0MatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 40)
        // (d, quants): random; max nibble; every nibble with a negative scale; zero scale.
        let cases: [(UInt16, [Int])] = [
            (0x2E66, randoms(32, 0...15, &rng)), (0x3C00, Array(repeating: 15, count: 32)),
            (0xB800, (0..<32).map { $0 % 16 }), (0x0000, randoms(32, 0...15, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, q) in cases {
            bytes += le16(d)
            for j in 0..<16 { bytes.append(UInt8(q[j] | q[j + 16] << 4)) }
            for i in 0..<32 {
                expected.append(f16(d) * Double(q[i] - 8))
                magnitude.append(abs(f16(d)) * 8)
            }
        }
        try check(.q4_0, bytes, expected, magnitude)
    }

    func testQ4_1MatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 41)
        // (d, m, quants): negative minimum; max nibble; zero scale; negative scale with zero minimum.
        let cases: [(UInt16, UInt16, [Int])] = [
            (0x2E66, 0xBC00, randoms(32, 0...15, &rng)), (0x3C00, 0x4000, Array(repeating: 15, count: 32)),
            (0x0000, 0xC500, randoms(32, 0...15, &rng)), (0xB400, 0x0000, (0..<32).map { $0 % 16 }),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, m, q) in cases {
            bytes += le16(d) + le16(m)
            for j in 0..<16 { bytes.append(UInt8(q[j] | q[j + 16] << 4)) }
            for i in 0..<32 {
                expected.append(f16(d) * Double(q[i]) + f16(m))
                magnitude.append(abs(f16(d)) * 15 + abs(f16(m)))
            }
        }
        try check(.q4_1, bytes, expected, magnitude)
    }

    /// The fifth bits of a Q5 block: bit `i` of a little-endian u32 is bit 4 of element `i`'s quant.
    private func fifthBits(_ q: [Int]) -> [UInt8] {
        var qh: UInt32 = 0
        for i in 0..<32 where q[i] & 16 != 0 { qh |= 1 << UInt32(i) }
        return [UInt8(qh & 0xFF), UInt8((qh >> 8) & 0xFF), UInt8((qh >> 16) & 0xFF), UInt8(qh >> 24)]
    }

    func testQ5_0MatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 50)
        let cases: [(UInt16, [Int])] = [
            (0x2E66, randoms(32, 0...31, &rng)), (0x3C00, Array(repeating: 31, count: 32)),
            (0xB800, (0..<32).map { $0 }), (0x0000, randoms(32, 0...31, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, q) in cases {
            bytes += le16(d) + fifthBits(q)
            for j in 0..<16 { bytes.append(UInt8((q[j] & 15) | (q[j + 16] & 15) << 4)) }
            for i in 0..<32 {
                expected.append(f16(d) * Double(q[i] - 16))
                magnitude.append(abs(f16(d)) * 16)
            }
        }
        try check(.q5_0, bytes, expected, magnitude)
    }

    func testQ5_1MatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 51)
        let cases: [(UInt16, UInt16, [Int])] = [
            (0x2E66, 0xBC00, randoms(32, 0...31, &rng)), (0x3C00, 0x4000, Array(repeating: 31, count: 32)),
            (0x0000, 0xC500, randoms(32, 0...31, &rng)), (0xB400, 0x0000, (0..<32).map { 31 - $0 }),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, m, q) in cases {
            bytes += le16(d) + le16(m) + fifthBits(q)
            for j in 0..<16 { bytes.append(UInt8((q[j] & 15) | (q[j + 16] & 15) << 4)) }
            for i in 0..<32 {
                expected.append(f16(d) * Double(q[i]) + f16(m))
                magnitude.append(abs(f16(d)) * 31 + abs(f16(m)))
            }
        }
        try check(.q5_1, bytes, expected, magnitude)
    }

    func testQ8_0MatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 80)
        let cases: [(UInt16, [Int])] = [
            (0x2E66, randoms(32, -128...127, &rng)), (0x3C00, Array(repeating: 127, count: 32)),
            (0xB800, Array(repeating: -128, count: 32)), (0x0000, randoms(32, -128...127, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, q) in cases {
            bytes += le16(d) + q.map { UInt8(bitPattern: Int8($0)) }
            for i in 0..<32 {
                expected.append(f16(d) * Double(q[i]))
                magnitude.append(abs(f16(d)) * 128)
            }
        }
        try check(.q8_0, bytes, expected, magnitude)
    }

    // MARK: K-quants (256-element super-blocks)

    /// Packs 2-bit values the way Q2_K and Q3_K do: element `i` lives in byte `32 × (i / 128) + i mod 32`
    /// of the 64 quant bytes, at bit `2 × ((i mod 128) / 32)`.
    private func twoBitQuants(_ q: [Int]) -> [UInt8] {
        var qs = [UInt8](repeating: 0, count: 64)
        for i in 0..<256 { qs[32 * (i / 128) + i % 32] |= UInt8(q[i] & 3) << UInt8(2 * ((i % 128) / 32)) }
        return qs
    }

    func testQ2_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 2)
        // (d, dmin, scales, mins, quants): random; maxima with a negative dmin; zero d.
        let cases: [(UInt16, UInt16, [Int], [Int], [Int])] = [
            (0x2E66, 0x2A66, randoms(16, 0...15, &rng), randoms(16, 0...15, &rng), randoms(256, 0...3, &rng)),
            (0x3C00, 0xB800, Array(repeating: 15, count: 16), Array(repeating: 15, count: 16), Array(repeating: 3, count: 256)),
            (0x0000, 0x3800, randoms(16, 0...15, &rng), randoms(16, 0...15, &rng), randoms(256, 0...3, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, dmin, s, mn, q) in cases {
            bytes += (0..<16).map { UInt8(s[$0] | mn[$0] << 4) } + twoBitQuants(q) + le16(d) + le16(dmin)
            for i in 0..<256 {
                let k = i / 16
                expected.append(f16(d) * Double(s[k]) * Double(q[i]) - f16(dmin) * Double(mn[k]))
                magnitude.append(abs(f16(d)) * 45 + abs(f16(dmin)) * 15)
            }
        }
        try check(.q2_K, bytes, expected, magnitude)
    }

    func testQ3_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 3)
        // (d, 6-bit scales, 3-bit quants): random; all maxima; all minima (scale −32, quant −4); zero d.
        let cases: [(UInt16, [Int], [Int])] = [
            (0x2E66, randoms(16, 0...63, &rng), randoms(256, 0...7, &rng)),
            (0x3C00, Array(repeating: 63, count: 16), Array(repeating: 7, count: 256)),
            (0xB800, Array(repeating: 0, count: 16), Array(repeating: 0, count: 256)),
            (0x0000, randoms(16, 0...63, &rng), randoms(256, 0...7, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, sc, u) in cases {
            // High bit of element i: byte i mod 32, bit i / 32, set when the quant is 4 or more.
            var hmask = [UInt8](repeating: 0, count: 32)
            for i in 0..<256 where u[i] >= 4 { hmask[i % 32] |= UInt8(1) << UInt8(i / 32) }
            // Scale k: low nibble in byte k (k < 8) or the high nibble of byte k − 8; top two bits in
            // byte 8 + k mod 4 at bit 2 × (k / 4).
            var scales = [UInt8](repeating: 0, count: 12)
            for k in 0..<16 {
                if k < 8 { scales[k] |= UInt8(sc[k] & 15) } else { scales[k - 8] |= UInt8(sc[k] & 15) << 4 }
                scales[8 + k % 4] |= UInt8(sc[k] >> 4) << UInt8(2 * (k / 4))
            }
            bytes += hmask + twoBitQuants(u) + scales + le16(d)
            for i in 0..<256 {
                expected.append(f16(d) * Double(sc[i / 16] - 32) * Double(u[i] - 4))
                magnitude.append(abs(f16(d)) * 32 * 4)
            }
        }
        try check(.q3_K, bytes, expected, magnitude)
    }

    /// The 12-byte scale field of Q4_K and Q5_K for eight 6-bit scales and minimums: sub-blocks 0–3 take the
    /// low 6 bits of bytes 0–3 (scale) and 4–7 (minimum); sub-blocks 4–7 keep their low nibbles in bytes
    /// 8–11 (scale low, minimum high) and their top two bits in the top bits of bytes 0–3 and 4–7.
    private func kScales(_ sc: [Int], _ mn: [Int]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12)
        for k in 0..<4 {
            b[k] = UInt8(sc[k] & 63) | UInt8(sc[k + 4] >> 4) << 6
            b[k + 4] = UInt8(mn[k] & 63) | UInt8(mn[k + 4] >> 4) << 6
            b[k + 8] = UInt8(sc[k + 4] & 15) | UInt8(mn[k + 4] & 15) << 4
        }
        return b
    }

    /// 4-bit parts of Q4_K/Q5_K quants: element `i` is in byte `32 × (i / 64) + i mod 32`, the low nibble for
    /// the first 32 of each 64.
    private func kNibbles(_ q: [Int]) -> [UInt8] {
        var qs = [UInt8](repeating: 0, count: 128)
        for i in 0..<256 { qs[32 * (i / 64) + i % 32] |= UInt8(q[i] & 15) << (i % 64 < 32 ? 0 : 4) }
        return qs
    }

    func testQ4_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 4)
        let cases: [(UInt16, UInt16, [Int], [Int], [Int])] = [
            (0x2E66, 0x2A66, randoms(8, 0...63, &rng), randoms(8, 0...63, &rng), randoms(256, 0...15, &rng)),
            (0x3C00, 0xB800, Array(repeating: 63, count: 8), Array(repeating: 63, count: 8), Array(repeating: 15, count: 256)),
            (0x0000, 0x3800, randoms(8, 0...63, &rng), randoms(8, 0...63, &rng), randoms(256, 0...15, &rng)),
            (0x3400, 0x0000, [0, 1, 62, 63, 16, 32, 48, 15], [63, 62, 1, 0, 15, 48, 32, 16], (0..<256).map { $0 % 16 }),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, dmin, sc, mn, q) in cases {
            bytes += le16(d) + le16(dmin) + kScales(sc, mn) + kNibbles(q)
            for i in 0..<256 {
                let k = i / 32
                expected.append(f16(d) * Double(sc[k]) * Double(q[i]) - f16(dmin) * Double(mn[k]))
                magnitude.append(abs(f16(d)) * 63 * 15 + abs(f16(dmin)) * 63)
            }
        }
        try check(.q4_K, bytes, expected, magnitude)
    }

    func testQ5_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 5)
        let cases: [(UInt16, UInt16, [Int], [Int], [Int])] = [
            (0x2E66, 0x2A66, randoms(8, 0...63, &rng), randoms(8, 0...63, &rng), randoms(256, 0...31, &rng)),
            (0x3C00, 0xB800, Array(repeating: 63, count: 8), Array(repeating: 63, count: 8), Array(repeating: 31, count: 256)),
            (0x0000, 0x3800, randoms(8, 0...63, &rng), randoms(8, 0...63, &rng), randoms(256, 0...31, &rng)),
            (0x3400, 0x0000, [0, 1, 62, 63, 16, 32, 48, 15], [63, 62, 1, 0, 15, 48, 32, 16], (0..<256).map { $0 % 32 }),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, dmin, sc, mn, q) in cases {
            // Fifth bit of element i: byte i mod 32, bit i / 32.
            var qh = [UInt8](repeating: 0, count: 32)
            for i in 0..<256 where q[i] & 16 != 0 { qh[i % 32] |= UInt8(1) << UInt8(i / 32) }
            bytes += le16(d) + le16(dmin) + kScales(sc, mn) + qh + kNibbles(q)
            for i in 0..<256 {
                let k = i / 32
                expected.append(f16(d) * Double(sc[k]) * Double(q[i]) - f16(dmin) * Double(mn[k]))
                magnitude.append(abs(f16(d)) * 63 * 31 + abs(f16(dmin)) * 63)
            }
        }
        try check(.q5_K, bytes, expected, magnitude)
    }

    func testQ6_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 6)
        // (d, signed 8-bit scales, 6-bit quants): random; maxima; minima (scale −128, quant −32); zero d.
        let cases: [(UInt16, [Int], [Int])] = [
            (0x2E66, randoms(16, -128...127, &rng), randoms(256, 0...63, &rng)),
            (0x3C00, Array(repeating: 127, count: 16), Array(repeating: 63, count: 256)),
            (0xB800, Array(repeating: -128, count: 16), Array(repeating: 0, count: 256)),
            (0x0000, randoms(16, -128...127, &rng), randoms(256, 0...63, &rng)),
        ]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, sc, q) in cases {
            // Element i: half n = i / 128, quarter p = (i mod 128) / 32, lane l = i mod 32. Low nibble in
            // ql[64n + 32 × (p mod 2) + l] (low half of the byte for p < 2); top two bits in qh[32n + l] at bit 2p.
            var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
            for i in 0..<256 {
                let n = i / 128, p = (i % 128) / 32, l = i % 32
                ql[64 * n + 32 * (p % 2) + l] |= UInt8(q[i] & 15) << (p < 2 ? 0 : 4)
                qh[32 * n + l] |= UInt8(q[i] >> 4) << UInt8(2 * p)
            }
            bytes += ql + qh + sc.map { UInt8(bitPattern: Int8($0)) } + le16(d)
            for i in 0..<256 {
                expected.append(f16(d) * Double(sc[i / 16]) * Double(q[i] - 32))
                magnitude.append(abs(f16(d)) * 128 * 32)
            }
        }
        try check(.q6_K, bytes, expected, magnitude)
    }

    func testQ8_KMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 8)
        let cases: [(Float, [Int])] = [(0.0123, randoms(256, -128...127, &rng)), (-2, Array(repeating: -128, count: 256)), (0, randoms(256, -128...127, &rng))]
        var bytes: [UInt8] = [], expected: [Double] = [], magnitude: [Double] = []
        for (d, q) in cases {
            withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes += $0 }
            bytes += q.map { UInt8(bitPattern: Int8($0)) }
            for g in 0..<16 {  // group sums, which dequantisation ignores
                let sum = Int16(q[(16 * g)..<(16 * g + 16)].reduce(0, +))
                withUnsafeBytes(of: sum.littleEndian) { bytes += $0 }
            }
            for i in 0..<256 {
                expected.append(Double(d) * Double(q[i]))
                magnitude.append(abs(Double(d)) * 128)
            }
        }
        try check(.q8_K, bytes, expected, magnitude)
    }

    // MARK: Parallel path and unsupported types

    func testParallelConversionOfLargeTensorsEqualsBlockByBlockConversion() throws {
        var rng = SplitMix64(seed: 99)
        for type in GGMLType.allCases where GGMLDequantizer.supports(type) {
            let blocks = (GGMLDequantizer.parallelThreshold * 3 + 17 * type.blockSize) / type.blockSize
            var bytes = (0..<(blocks * type.blockBytes)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Random bytes may decode to NaN or infinity; the comparison is bitwise, so that is fine.
            var whole = [Float](repeating: 0, count: blocks * type.blockSize)
            try bytes.withUnsafeBytes { src in try whole.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(type, from: src, into: $0) } }
            var single = [Float](repeating: 0, count: type.blockSize)
            for b in stride(from: 0, to: blocks, by: 97) {
                try bytes.withUnsafeMutableBytes { all in
                    let src = UnsafeRawBufferPointer(rebasing: all[(b * type.blockBytes)..<((b + 1) * type.blockBytes)])
                    try single.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(type, from: src, into: $0) }
                }
                XCTAssertEqual(single.map(\.bitPattern), whole[(b * type.blockSize)..<((b + 1) * type.blockSize)].map(\.bitPattern), "\(type.name) block \(b)")
            }
            bytes.removeAll()
        }
    }

    func testUnsupportedTypesThrowNamingTheType() {
        for type in GGMLType.allCases where !GGMLDequantizer.supports(type) {
            let bytes = [UInt8](repeating: 0, count: type.blockBytes)
            var out = [Float](repeating: 0, count: type.blockSize)
            XCTAssertThrowsError(try bytes.withUnsafeBytes { src in try out.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(type, from: src, into: $0) } }) { e in
                XCTAssertTrue("\(e)".contains(type.name) && "\(e)".contains("not supported"), "\(e)")
            }
        }
        let supported = GGMLType.allCases.filter(GGMLDequantizer.supports).map(\.name)
        XCTAssertEqual(Set(supported), ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"])
    }
}
