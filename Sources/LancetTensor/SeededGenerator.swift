#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A deterministic random number generator: xoshiro256** (Blackman and Vigna), its 256-bit state
/// seeded from one UInt64 through splitmix64.
///
/// The integer stream depends only on the seed, on every platform and Swift version. Derived
/// values avoid the standard library's unspecified algorithms (`next(upperBound:)`, `shuffle()`);
/// use `nextIndex(below:)`, `shuffle(seededBy:)` and `sampleIndices` instead. `nextNormal` goes
/// through Double `log`, `cos`, `sin` and is rounded to Float, so a different libm could change a
/// value only if it differed from glibc by more than the rounding (not observed in practice).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64
    private var spareNormal: Float?

    /// A generator whose state is four successive splitmix64 outputs from `seed`.
    public init(seed: UInt64) {
        var x = seed
        s0 = SeededGenerator.splitmix64(&x)
        s1 = SeededGenerator.splitmix64(&x)
        s2 = SeededGenerator.splitmix64(&x)
        s3 = SeededGenerator.splitmix64(&x)
        spareNormal = nil
    }

    /// A generator with the given raw xoshiro256** state (not all zero), for known-answer tests.
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "SeededGenerator: the all-zero state is a fixed point")
        (s0, s1, s2, s3) = state
        spareNormal = nil
    }

    /// splitmix64 (Steele, Lea, Flood): advances `state` by the golden gamma and mixes it.
    public static func splitmix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = SeededGenerator.rotl(s3, 45)
        return result
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A uniform integer in 0..<bound, without modulo bias (Lemire's multiply-and-reject method).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:): bound must be positive, got \(bound)")
        let n = UInt64(bound)
        var m = next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n  // 2⁶⁴ mod n
            while m.low < threshold { m = next().multipliedFullWidth(by: n) }
        }
        return Int(m.high)
    }

    /// A standard normal sample (mean 0, variance 1) by the Box–Muller transform in Double.
    ///
    /// Each pair of uniforms gives two samples; the second is returned by the next call.
    public mutating func nextNormal() -> Float {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        let u1 = Double((next() >> 11) + 1) * 0x1p-53  // (0, 1]: log stays finite
        let u2 = nextDouble()
        let r = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareNormal = Float(r * sin(angle))
        return Float(r * cos(angle))
    }

    /// `k` distinct indices from 0..<n, uniformly among all k-subsets, in ascending order
    /// (Floyd's algorithm: k draws and O(k) memory, whatever n is).
    public mutating func sampleIndices(_ k: Int, from n: Int) -> [Int] {
        precondition(k >= 0 && k <= n, "sampleIndices: cannot draw \(k) distinct indices from \(n)")
        var chosen = Set<Int>(minimumCapacity: k)
        var picked: [Int] = []
        picked.reserveCapacity(k)
        for j in (n - k)..<n {
            let t = nextIndex(below: j + 1)
            let v = chosen.contains(t) ? j : t
            chosen.insert(v)
            picked.append(v)
        }
        return picked.sorted()
    }
}

extension MutableCollection where Self: RandomAccessCollection {
    /// Fisher–Yates shuffle driven by `generator`, reproducible for a given seed.
    public mutating func shuffle(seededBy generator: inout SeededGenerator) {
        let n = count
        if n < 2 { return }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = generator.nextIndex(below: i + 1)
            if i != j { swapAt(index(startIndex, offsetBy: i), index(startIndex, offsetBy: j)) }
        }
    }
}

extension Tensor {
    /// A tensor of independent normal samples with the given mean and standard deviation, drawn in
    /// row-major order.
    public static func randomNormal(shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        var g = generator
        let t = Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = mean + std * g.nextNormal() }
        }
        generator = g
        return t
    }

    /// A tensor of independent uniform samples from `range` (lowerBound + width·u, u in [0, 1),
    /// kept below upperBound when Float rounding would reach it), drawn in row-major order.
    public static func randomUniform(shape: [Int], in range: Range<Float>, generator: inout SeededGenerator) -> Tensor {
        var g = generator
        precondition(!range.isEmpty, "randomUniform: empty range \(range)")
        let width = range.upperBound - range.lowerBound
        let top = range.upperBound.nextDown
        let t = Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = min(range.lowerBound + width * g.nextFloat(), top) }
        }
        generator = g
        return t
    }
}
