/// The legacy 32-element block formats. In each, element `j` of the first half of a block is the low
/// nibble of quant byte `j` and element `j + 16` its high nibble; the arithmetic is ggml's reference order.
extension GGMLDequantizer {
    /// Q4_0 (18 bytes): f16 scale `d`, 16 bytes of 4-bit quants. `x = d × (q − 8)`.
    static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 18, out = y + b * 32
            let d = half(p, 0)
            for j in 0..<16 {
                let q = byte(p, 2 + j)
                out[j] = Float(Int32(q & 0xF) - 8) * d
                out[j + 16] = Float(Int32(q >> 4) - 8) * d
            }
        }
    }

    /// Q4_1 (20 bytes): f16 scale `d`, f16 minimum `m`, 16 bytes of 4-bit quants. `x = d × q + m`.
    static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 20, out = y + b * 32
            let d = half(p, 0), m = half(p, 2)
            for j in 0..<16 {
                let q = byte(p, 4 + j)
                out[j] = Float(q & 0xF) * d + m
                out[j + 16] = Float(q >> 4) * d + m
            }
        }
    }

    /// Q5_0 (22 bytes): f16 scale `d`, 32 fifth bits (little-endian u32, bit `j` for element `j`),
    /// 16 bytes of low nibbles. `x = d × (q − 16)`.
    static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 22, out = y + b * 32
            let d = half(p, 0)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0..<16 {
                let q = byte(p, 6 + j)
                let lo = Int32(q & 0xF) | Int32((qh >> UInt32(j)) & 1) << 4
                let hi = Int32(q >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
                out[j] = Float(lo - 16) * d
                out[j + 16] = Float(hi - 16) * d
            }
        }
    }

    /// Q5_1 (24 bytes): f16 scale `d`, f16 minimum `m`, 32 fifth bits, 16 bytes of low nibbles. `x = d × q + m`.
    static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 24, out = y + b * 32
            let d = half(p, 0), m = half(p, 2)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0..<16 {
                let q = byte(p, 8 + j)
                let lo = UInt32(q & 0xF) | ((qh >> UInt32(j)) & 1) << 4
                let hi = UInt32(q >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                out[j] = Float(lo) * d + m
                out[j + 16] = Float(hi) * d + m
            }
        }
    }

    /// Q8_0 (34 bytes): f16 scale `d`, 32 signed bytes. `x = d × q`.
    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = x + b * 34, out = y + b * 32
            let d = half(p, 0)
            for j in 0..<32 { out[j] = Float(Int8(bitPattern: byte(p, 2 + j))) * d }
        }
    }
}
