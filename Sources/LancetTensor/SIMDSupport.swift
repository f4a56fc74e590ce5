// Small SIMD helpers shared by the kernels: unaligned 16-lane loads and stores, partial loads for
// row tails (so the tail goes through the same arithmetic as the body), and a vector exp.

// The kernels use SIMD16<Float>; without AVX flags the compiler lowers it to four SSE registers.
// Avoid `clamped` and `pointwiseMin/Max` in hot loops: the first is an out-of-line call and the
// second is scalarised for its NaN rules; compare-and-`replacing` compiles to vector blends.

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Loads `count < 16` floats, filling the other lanes with `fill`. One copy of the bytes, not a lane-by-lane
/// insert (which cost a short-row matrix–vector product three quarters of its speed).
@inline(__always) func loadPartial16(_ p: UnsafePointer<Float>, _ count: Int, fill: Float = 0) -> SIMD16<Float> {
    var v = SIMD16<Float>(repeating: fill)
    withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: 4 * count) }
    return v
}

/// Stores the first `count < 16` lanes of `v`.
@inline(__always) func storePartial16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: 4 * count) }
}

/// The bit mask keeping the first `count` of 16 lanes (all bits set there, zero in the others).
@inline(__always) func laneMask16(_ count: Int) -> SIMD16<UInt32> {
    let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    return SIMD16<UInt32>(repeating: 0).replacing(with: ~0, where: lanes .< UInt32(truncatingIfNeeded: count))
}

/// `v` with the lanes outside `mask` set to +0 (a bitwise and, so whatever those lanes held, NaN included, is gone).
@inline(__always) func masked16(_ v: SIMD16<Float>, _ mask: SIMD16<UInt32>) -> SIMD16<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & mask, to: SIMD16<Float>.self)
}

/// The sum of the squares of 16 lanes, widened to Double before summing.
@inline(__always) func squaresAsDouble(_ v: SIMD16<Float>) -> SIMD8<Double> {
    let sq = v * v  // products in Float, as llama.cpp does before widening
    return SIMD8<Double>(sq.lowHalf) + SIMD8<Double>(sq.highHalf)
}

/// eˣ lane by lane: within 1 ulp of glibc's `expf` over a dense sweep of [−87, 88] (tests allow 2).
///
/// x = n·ln 2 + r with n = round(x·log₂e) and |r| ≤ ln2/2 (ln 2 split in two parts so n·ln2hi is
/// exact); eʳ by its degree-7 Taylor polynomial (truncation error < 6e-9 on that interval); 2ⁿ is
/// built from exponent bits in two halves, so results that overflow give +∞ and results that
/// underflow go through the subnormals to 0, like `expf`. NaN in gives NaN out.
@inline(__always) func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let log2e: Float = 1.442_695_040_888_963_4
    let ln2hi: Float = 0.693_359_375  // 355/512: few mantissa bits, so n·ln2hi is exact for |n| ≤ 150
    let ln2lo: Float = -2.121_944_400_546_905_8e-4  // ln 2 − ln2hi
    let magic: Float = 12_582_912  // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    // Clamp to [-104, 89] so n fits the exponent construction (`clamped` is an out-of-line call).
    let xc = x.replacing(with: -104, where: x .< -104).replacing(with: 89, where: x .> 89)
    let t = xc * log2e + magic
    let n = t - magic
    let r = (xc - n * ln2hi) - n * ln2lo
    var p = SIMD16<Float>(repeating: 1.0 / 5040)
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000  // n as an integer, in [-150, 128]
    let n1 = ni &>> 1
    let n2 = ni &- n1
    let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD16<Float>.self)  // 2^n1, normal for |n1| ≤ 75
    let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD16<Float>.self)
    return (p * s1 * s2).replacing(with: x, where: x .!= x)
}

/// eˣ lane by lane for x ≤ 0 (a score minus its row's maximum), within 2 ulp of `expf` where `expf` is a normal
/// float, and exactly 0 below −87.33 (where eˣ < 2⁻¹²⁶; −∞ included): half the instructions of `exp16`, whose
/// overflow, subnormal and NaN handling a shifted score never needs.
///
/// The same reduction as `exp16` (x = n·ln 2 + r, n = round(x·log₂e), eʳ by its degree-7 Taylor polynomial) with
/// fused multiply–adds, and 2ⁿ, n ∈ [−126, 0], built in one step.
@inline(__always) func expNonPositive16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let low: Float = -87.33  // e^-87.33 ≈ 1.2e-38, the smallest normal float
    let magic = SIMD16<Float>(repeating: 12_582_912)
    let xc = x.replacing(with: low, where: x .< low)
    let t = magic.addingProduct(xc, SIMD16(repeating: 1.442_695_040_888_963_4))
    let n = t - magic
    let r = xc.addingProduct(n, SIMD16(repeating: -0.693_359_375)).addingProduct(n, SIMD16(repeating: 2.121_944_400_546_905_8e-4))
    var p = SIMD16<Float>(repeating: 1.0 / 720).addingProduct(SIMD16(repeating: 1.0 / 5040), r)
    p = SIMD16(repeating: 1.0 / 120).addingProduct(p, r)
    p = SIMD16(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD16(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD16(repeating: 0.5).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    p = SIMD16(repeating: 1).addingProduct(p, r)
    let scale = unsafeBitCast((unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23, to: SIMD16<Float>.self)
    return (p * scale).replacing(with: 0, where: x .< low)
}

/// The logistic function 1/(1 + e⁻ˣ) lane by lane.
@inline(__always) func sigmoid16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    1 / (1 + exp16(-x))
}

/// Lane-wise maximum by compare and blend that propagates NaN: a lane NaN in either operand is NaN
/// in the result, so a running maximum keeps any NaN it meets (`pointwiseMax` follows IEEE maxNum,
/// which drops NaN, and is scalarised). For other values it is `b > a ? b : a`, lane by lane.
@inline(__always) func lanewiseMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    a.replacing(with: b, where: (b .> a) .| (b .!= b))
}

/// The largest lane, or NaN if any lane is NaN (`SIMD.max()` keeps or drops a NaN depending on the
/// lane it is in).
@inline(__always) func maxLane(_ v: SIMD16<Float>) -> Float {
    any(v .!= v) ? .nan : v.max()
}

/// `Swift.max(a, b)` (b when b ≥ a, else a) except that a NaN in either gives NaN.
@inline(__always) func maxPropagatingNaN(_ a: Float, _ b: Float) -> Float {
    a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
}
