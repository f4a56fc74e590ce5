/// The legacy 32-element block formats, encoded as ggml's reference quantisers do. In each, element `j` of
/// the first half of a block is the low nibble of quant byte `j` and element `j + 16` its high nibble; the
/// fifth bits of Q5_0 and Q5_1 are a little-endian u32 with bit `j` for element `j`.
extension GGMLQuantizer {
    /// Q8_0 (34 bytes): `d = amax / 127` as f16, then `q = round(x × (1 / d))` (ties away from zero) with
    /// the unrounded `d`. (A block of subnormal values overflows `1 / d`; its quants are then what C's
    /// conversion makes of ±∞ and NaN, as in ggml, and decode to zero through the f16 `d`, which is 0.)
    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let v = x + 32 * b, out = y + 34 * b
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(v[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, out, 0)
            for j in 0..<32 {
                let q = truncatingConversion((v[j] * id).rounded(.toNearestOrAwayFromZero))
                out.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }

    /// Q4_0 (18 bytes): the element of largest magnitude `m` (the first if tied) gives `d = m / −8`, stored
    /// as f16; `q = min(15, trunc(x × (1 / d) + 8.5))` with the unrounded `d`.
    static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let v = x + 32 * b, out = y + 18 * b
            let d = signedExtreme(v) / -8
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, out, 0)
            for j in 0..<16 {
                let lo = clampedQuant(v[j] * id + 8.5, 15), hi = clampedQuant(v[j + 16] * id + 8.5, 15)
                out.storeBytes(of: lo | hi << 4, toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }

    /// Q4_1 (20 bytes): `d = (max − min) / 15` and `min` as f16; `q = min(15, trunc((x − min) × (1 / d) + 0.5))`.
    static func q4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let v = x + 32 * b, out = y + 20 * b
            let (lowest, highest) = range(v)
            let d = (highest - lowest) / 15
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, out, 0)
            storeHalf(lowest, out, 2)
            for j in 0..<16 {
                let lo = clampedQuant((v[j] - lowest) * id + 0.5, 15), hi = clampedQuant((v[j + 16] - lowest) * id + 0.5, 15)
                out.storeBytes(of: lo | hi << 4, toByteOffset: 4 + j, as: UInt8.self)
            }
        }
    }

    /// Q5_0 (22 bytes): as Q4_0 with `d = m / −16` and `q = min(31, trunc(x × (1 / d) + 16.5))`; the fifth
    /// bits follow `d`, the low nibbles after them.
    static func q5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let v = x + 32 * b, out = y + 22 * b
            let d = signedExtreme(v) / -16
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, out, 0)
            var high: UInt32 = 0
            for j in 0..<16 {
                let lo = clampedQuant(v[j] * id + 16.5, 31), hi = clampedQuant(v[j + 16] * id + 16.5, 31)
                out.storeBytes(of: (lo & 0xF) | (hi & 0xF) << 4, toByteOffset: 6 + j, as: UInt8.self)
                high |= UInt32(lo >> 4 & 1) << j | UInt32(hi >> 4 & 1) << (j + 16)
            }
            out.storeBytes(of: high.littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }

    /// Q5_1 (24 bytes): `d = (max − min) / 31` and `min` as f16, then the fifth bits and low nibbles of
    /// `q = trunc((x − min) × (1 / d) + 0.5)` (no clamp, as in ggml).
    static func q5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let v = x + 32 * b, out = y + 24 * b
            let (lowest, highest) = range(v)
            let d = (highest - lowest) / 31
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, out, 0)
            storeHalf(lowest, out, 2)
            var high: UInt32 = 0
            for j in 0..<16 {
                let lo = UInt8(truncatingIfNeeded: truncatingConversion((v[j] - lowest) * id + 0.5))
                let hi = UInt8(truncatingIfNeeded: truncatingConversion((v[j + 16] - lowest) * id + 0.5))
                out.storeBytes(of: (lo & 0xF) | (hi & 0xF) << 4, toByteOffset: 8 + j, as: UInt8.self)
                high |= UInt32(lo >> 4 & 1) << j | UInt32(hi >> 4 & 1) << (j + 16)
            }
            out.storeBytes(of: high.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    /// The element of largest magnitude, sign kept; the first one when several tie; 0 for an all-zero block.
    @inline(__always) static func signedExtreme(_ v: UnsafePointer<Float>) -> Float {
        var amax: Float = 0, extreme: Float = 0
        for j in 0..<32 where amax < abs(v[j]) { (amax, extreme) = (abs(v[j]), v[j]) }
        return extreme
    }

    /// The smallest and largest element of a 32-element block.
    @inline(__always) static func range(_ v: UnsafePointer<Float>) -> (Float, Float) {
        var lowest = Float.greatestFiniteMagnitude, highest = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if v[j] < lowest { lowest = v[j] }
            if v[j] > highest { highest = v[j] }
        }
        return (lowest, highest)
    }

    /// ggml's `MIN(limit, (int8_t)value)` stored as a byte: the value truncated to an 8-bit integer, then
    /// capped at `limit` (a negative result wraps, as the C assignment to `uint8_t` does).
    @inline(__always) static func clampedQuant(_ value: Float, _ limit: Int32) -> UInt8 {
        let q = Int32(Int8(truncatingIfNeeded: truncatingConversion(value)))
        return UInt8(truncatingIfNeeded: min(limit, q))
    }
}
