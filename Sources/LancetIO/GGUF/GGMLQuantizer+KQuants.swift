/// The 256-element K-quant super-blocks Q4_K, Q5_K and Q6_K, encoded as ggml's reference quantisers do:
/// each group of 32 (Q4_K, Q5_K) or 16 (Q6_K) values gets its own scale from `KQuantScaleSearch`; the group
/// scales (and minimums) are then quantised to 6 or 8 bits against one f16 super-block scale, and the
/// values re-quantised against the scales as stored.
extension GGMLQuantizer {
    /// Q4_K (144 bytes): f16 `d`, f16 `dmin`, twelve bytes of packed 6-bit group scales and minimums, then
    /// 128 bytes of 4-bit quants (groups 2k and 2k+1 share 32 bytes, low and high nibbles).
    static func q4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        asymmetricK(x, y, blocks, levels: 15, rmin: -1, rdelta: 0.1, steps: 20, blockBytes: 144) { quants, out in
            for half in 0..<4 {
                for l in 0..<32 {
                    out.storeBytes(of: quants[64 * half + l] | quants[64 * half + l + 32] << 4, toByteOffset: 16 + 32 * half + l, as: UInt8.self)
                }
            }
        }
    }

    /// Q5_K (176 bytes): as Q4_K with 5-bit quants: after the scales, 32 bytes of fifth bits (bit 2k of byte
    /// `l` for element `l` of group 2k, bit 2k+1 for group 2k+1), then 128 bytes of low nibbles.
    static func q5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        asymmetricK(x, y, blocks, levels: 31, rmin: -0.5, rdelta: 0.1, steps: 15, blockBytes: 176) { quants, out in
            var high = [UInt8](repeating: 0, count: 32)
            for half in 0..<4 {
                for l in 0..<32 {
                    var lo = quants[64 * half + l], hi = quants[64 * half + l + 32]
                    if lo > 15 { lo -= 16; high[l] |= 1 << (2 * half) }
                    if hi > 15 { hi -= 16; high[l] |= 2 << (2 * half) }
                    out.storeBytes(of: lo | hi << 4, toByteOffset: 48 + 32 * half + l, as: UInt8.self)
                }
            }
            for l in 0..<32 { out.storeBytes(of: high[l], toByteOffset: 16 + l, as: UInt8.self) }
        }
    }

    /// Q6_K (210 bytes): 128 bytes of low nibbles, 64 bytes of high bit pairs, sixteen signed 8-bit group
    /// scales, f16 `d` last. Quants are `q = L + 32` with `x ≈ d × scale × L`, `L ∈ −32…31`.
    static func q6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int) {
        var quants = [Int8](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 16)
        for b in 0..<blocks {
            let v = x + 256 * b, out = y + 210 * b
            var maxScale: Float = 0, maxAbsScale: Float = 0
            quants.withUnsafeMutableBufferPointer { q in
                for g in 0..<16 {
                    let scale = KQuantScaleSearch.symmetric(v + 16 * g, count: 16, levels: 32, quants: q.baseAddress! + 16 * g)
                    scales[g] = scale
                    if abs(scale) > maxAbsScale { (maxAbsScale, maxScale) = (abs(scale), scale) }
                }
            }
            if maxAbsScale < 1e-15 {
                out.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                continue
            }
            let iscale = -128 / maxScale
            storeHalf(1 / iscale, out, 208)
            let d = GGMLDequantizer.half(UnsafeRawPointer(out), 208)
            for g in 0..<16 {
                let s = Int8(truncatingIfNeeded: min(127, nearestInt(iscale * scales[g])))
                out.storeBytes(of: s, toByteOffset: 192 + g, as: Int8.self)
                let groupScale = d * Float(s)
                if groupScale == 0 { continue }
                for i in 0..<16 {
                    quants[16 * g + i] = Int8(min(31, max(-32, nearestInt(v[16 * g + i] / groupScale))) + 32)
                }
            }
            for half in 0..<2 {
                for l in 0..<32 {
                    let i = 128 * half + l
                    let (q0, q1, q2, q3) = (UInt8(bitPattern: quants[i]), UInt8(bitPattern: quants[i + 32]),
                                            UInt8(bitPattern: quants[i + 64]), UInt8(bitPattern: quants[i + 96]))
                    out.storeBytes(of: (q0 & 0xF) | (q2 & 0xF) << 4, toByteOffset: 64 * half + l, as: UInt8.self)
                    out.storeBytes(of: (q1 & 0xF) | (q3 & 0xF) << 4, toByteOffset: 64 * half + l + 32, as: UInt8.self)
                    out.storeBytes(of: q0 >> 4 | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6,
                                   toByteOffset: 128 + 32 * half + l, as: UInt8.self)
                }
            }
        }
    }

    /// The shared body of Q4_K and Q5_K: eight groups of 32 get a scale and minimum (`KQuantScaleSearch`,
    /// each value weighted by `rms(group) + |x|`); both sets are quantised to 6 bits against `d = max / 63`
    /// and `dmin = max / 63` (f16), packed into bytes 4…15, and each value re-quantised to
    /// `round((x + dmin × m) / (d × s))`, clamped to `0…levels`. `pack` writes the quants from byte 16 on.
    private static func asymmetricK(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ blocks: Int,
                                    levels: Int32, rmin: Float, rdelta: Float, steps: Int, blockBytes: Int,
                                    pack: ([UInt8], UnsafeMutableRawPointer) -> Void) {
        var quants = [UInt8](repeating: 0, count: 256)
        var scratch = [UInt8](repeating: 0, count: 32)
        var weights = [Float](repeating: 0, count: 32)
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        var packed = [UInt8](repeating: 0, count: 12)
        var stored = [(scale: UInt8, min: UInt8)](repeating: (0, 0), count: 8)
        for b in 0..<blocks {
            let v = x + 256 * b, out = y + blockBytes * b
            var maxScale: Float = 0, maxMin: Float = 0
            for g in 0..<8 {
                let group = v + 32 * g
                var sumX2: Float = 0
                for l in 0..<32 { sumX2 += group[l] * group[l] }
                let rms = (sumX2 / 32).squareRoot()
                for l in 0..<32 { weights[l] = rms + abs(group[l]) }
                let (scale, minimum) = quants.withUnsafeMutableBufferPointer { q in
                    KQuantScaleSearch.asymmetric(group, count: 32, levels: levels, weights: weights, quants: q.baseAddress! + 32 * g,
                                                 scratch: &scratch, rmin: rmin, rdelta: rdelta, steps: steps)
                }
                (scales[g], mins[g]) = (scale, minimum)
                if scale > maxScale { maxScale = scale }
                if minimum > maxMin { maxMin = minimum }
            }
            let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
            for g in 0..<8 {
                let ls = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseScale * scales[g])))
                let lm = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseMin * mins[g])))
                stored[g] = (ls, lm)
                if g < 4 {
                    packed[g] = ls
                    packed[g + 4] = lm
                } else {
                    packed[g + 4] = (ls & 0xF) | (lm & 0xF) << 4
                    packed[g - 4] |= (ls >> 4) << 6
                    packed[g] |= (lm >> 4) << 6
                }
            }
            storeHalf(maxScale / 63, out, 0)
            storeHalf(maxMin / 63, out, 2)
            for i in 0..<12 { out.storeBytes(of: packed[i], toByteOffset: 4 + i, as: UInt8.self) }
            let d = GGMLDequantizer.half(UnsafeRawPointer(out), 0), dmin = GGMLDequantizer.half(UnsafeRawPointer(out), 2)
            for g in 0..<8 {
                let groupScale = d * Float(stored[g].scale)
                if groupScale == 0 { continue }
                let groupMin = dmin * Float(stored[g].min)
                for i in 0..<32 {
                    quants[32 * g + i] = UInt8(min(levels, max(0, nearestInt((v[32 * g + i] + groupMin) / groupScale))))
                }
            }
            pack(quants, out)
        }
    }
}
