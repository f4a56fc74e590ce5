/// The K-quant formats: super-blocks of 256 elements split into sub-blocks that carry their own
/// quantised scale (and minimum), themselves scaled by the super-block's f16 `d` (and `dmin`).
/// The arithmetic follows ggml's reference order, so results match llama.cpp's to the bit.
extension GGMLDequantizer {
    /// Q2_K (84 bytes): 16 scale bytes (low nibble scale, high nibble minimum, one per 16 elements),
    /// 64 bytes of 2-bit quants, f16 `d`, f16 `dmin`. Each 128-element half reads 32 quant bytes four times,
    /// at bit shifts 0, 2, 4, 6; `x = d × scale × q − dmin × min`.
    static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 84, out = y + b * 256
            let d = half(p, 80), dmin = half(p, 82)
            for n in 0..<2 {
                let qs = 16 + 32 * n
                for j in 0..<4 {
                    let shift = UInt8(2 * j)
                    for h in 0..<2 {
                        let sc = byte(p, 8 * n + 2 * j + h)
                        let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                        let o = out + 128 * n + 32 * j + 16 * h
                        for l in 0..<16 { o[l] = dl * Float((byte(p, qs + 16 * h + l) >> shift) & 3) - ml }
                    }
                }
            }
        }
    }

    /// Q3_K (110 bytes): 32 bytes of high bits, 64 bytes of 2-bit low quants, 12 bytes holding sixteen
    /// 6-bit scales (offset by 32), f16 `d`. Layout as Q2_K's; a clear high bit subtracts 4:
    /// `x = d × (scale − 32) × (low − (high ? 0 : 4))`.
    static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 110, out = y + b * 256
            let d = half(p, 108)
            for n in 0..<2 {
                let qs = 32 + 32 * n
                for j in 0..<4 {
                    let shift = UInt8(2 * j)
                    let mask = UInt8(1) << UInt8(4 * n + j)
                    for h in 0..<2 {
                        let dl = d * Float(q3Scale(p, 8 * n + 2 * j + h) - 32)
                        let o = out + 128 * n + 32 * j + 16 * h
                        for l in 0..<16 {
                            let low = Int32((byte(p, qs + 16 * h + l) >> shift) & 3)
                            let high: Int32 = byte(p, 16 * h + l) & mask != 0 ? 0 : 4
                            o[l] = dl * Float(low - high)
                        }
                    }
                }
            }
        }
    }

    /// Scale `i` (0..<16) of a Q3_K block: low 4 bits from byte `i mod 8` of the scale field (low nibble for
    /// `i < 8`, high nibble after), high 2 bits from byte `8 + i mod 4` at bit `2 × (i / 4)`.
    @inline(__always) static func q3Scale(_ p: UnsafeRawPointer, _ i: Int) -> Int32 {
        let lowByte = byte(p, 96 + (i & 7))
        let low = i < 8 ? lowByte & 0xF : lowByte >> 4
        let high = (byte(p, 96 + 8 + (i & 3)) >> UInt8(2 * (i >> 2))) & 3
        return Int32(low | high << 4)
    }

    /// Scale and minimum `j` (0..<8) of the 12-byte, 6-bit packed field shared by Q4_K and Q5_K at `offset`:
    /// for `j < 4` the low 6 bits of bytes `j` and `j + 4`; after, a nibble of byte `j + 4` and the top
    /// two bits of bytes `j − 4` and `j`.
    @inline(__always) static func k4ScaleMin(_ p: UnsafeRawPointer, _ offset: Int, _ j: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 { return (byte(p, offset + j) & 63, byte(p, offset + j + 4) & 63) }
        let s = byte(p, offset + j + 4)
        return ((s & 0xF) | (byte(p, offset + j - 4) >> 6) << 4, (s >> 4) | (byte(p, offset + j) >> 6) << 4)
    }

    /// Q4_K (144 bytes): f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and minimums (eight sub-blocks of 32),
    /// 128 bytes of nibbles: each 64 elements take the low then the high nibbles of 32 bytes.
    /// `x = d × scale × q − dmin × min`.
    static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 144, out = y + b * 256
            let d = half(p, 0), dmin = half(p, 2)
            for j in 0..<4 {
                let (s1, m1) = k4ScaleMin(p, 4, 2 * j), (s2, m2) = k4ScaleMin(p, 4, 2 * j + 1)
                let d1 = d * Float(s1), min1 = dmin * Float(m1)
                let d2 = d * Float(s2), min2 = dmin * Float(m2)
                let q = p + 16 + 32 * j, o = out + 64 * j
                for l in 0..<32 {
                    let v = byte(q, l)
                    o[l] = d1 * Float(v & 0xF) - min1
                    o[l + 32] = d2 * Float(v >> 4) - min2
                }
            }
        }
    }

    /// Q5_K (176 bytes): as Q4_K, plus 32 bytes of fifth bits before the nibbles: for the 64 elements `j`,
    /// bit `2j` of byte `l` completes the low nibble of element `l`, bit `2j + 1` the high nibble.
    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 176, out = y + b * 256
            let d = half(p, 0), dmin = half(p, 2)
            for j in 0..<4 {
                let (s1, m1) = k4ScaleMin(p, 4, 2 * j), (s2, m2) = k4ScaleMin(p, 4, 2 * j + 1)
                let d1 = d * Float(s1), min1 = dmin * Float(m1)
                let d2 = d * Float(s2), min2 = dmin * Float(m2)
                let q = p + 48 + 32 * j, o = out + 64 * j
                let (lowBit, highBit) = (UInt8(2 * j), UInt8(2 * j + 1))
                for l in 0..<32 {
                    let v = byte(q, l), h = byte(p, 16 + l)
                    o[l] = d1 * Float((v & 0xF) | ((h >> lowBit) & 1) << 4) - min1
                    o[l + 32] = d2 * Float((v >> 4) | ((h >> highBit) & 1) << 4) - min2
                }
            }
        }
    }

    /// Q6_K (210 bytes): 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 signed 8-bit scales
    /// (one per 16 elements), f16 `d`. `x = d × scale × (q − 32)`.
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 210, out = y + b * 256
            let d = half(p, 208)
            for n in 0..<2 {
                let ql = p + 64 * n, qh = p + 128 + 32 * n, o = out + 128 * n
                let scale = { (i: Int) in Float(Int8(bitPattern: byte(p, 192 + 8 * n + i))) }
                for l in 0..<32 {
                    let s = l / 16
                    let a = byte(ql, l), c = byte(ql, l + 32), h = byte(qh, l)
                    o[l] = d * scale(s) * Float(Int32((a & 0xF) | (h & 3) << 4) - 32)
                    o[l + 32] = d * scale(s + 2) * Float(Int32((c & 0xF) | ((h >> 2) & 3) << 4) - 32)
                    o[l + 64] = d * scale(s + 4) * Float(Int32((a >> 4) | ((h >> 4) & 3) << 4) - 32)
                    o[l + 96] = d * scale(s + 6) * Float(Int32((c >> 4) | ((h >> 6) & 3) << 4) - 32)
                }
            }
        }
    }

    /// Q8_K (292 bytes): f32 `d`, 256 signed bytes, 16 i16 group sums (unused here). `x = d × q`.
    static func q8_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 292, out = y + b * 256
            let d = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
            for j in 0..<256 { out[j] = d * Float(Int8(bitPattern: byte(p, 4 + j))) }
        }
    }
}
