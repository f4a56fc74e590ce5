/// CPython's `random` module generator — MT19937 seeded as `random.seed(n)` seeds it for a non-negative
/// integer `n` — with the two draws calibration code uses: `getrandbits(k)` and `randint(a, b)`.
/// Wanda's and SparseGPT's reference code and `../shared/tools/reference-prune` pick their calibration
/// windows with `random.seed(seed)` and `random.randint`; this reproduces those picks exactly.
public struct PythonRandom: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624

    /// The generator after `random.seed(seed)`: the seed's 32-bit words, least significant first (one
    /// zero word for 0), fed to MT19937's `init_by_array`.
    public init(seed: UInt64) {
        let key: [UInt32] = seed >> 32 == 0 ? [UInt32(truncatingIfNeeded: seed)]
                                            : [UInt32(truncatingIfNeeded: seed), UInt32(seed >> 32)]
        seedState(19_650_218)
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            let previous = state[i - 1] ^ (state[i - 1] >> 30)
            state[i] = (state[i] ^ (previous &* 1_664_525)) &+ key[j] &+ UInt32(j)
            i += 1; j += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            let previous = state[i - 1] ^ (state[i - 1] >> 30)
            state[i] = (state[i] ^ (previous &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
        }
        state[0] = 0x8000_0000
        position = 624
    }

    /// MT19937's `init_genrand`.
    private mutating func seedState(_ s: UInt32) {
        state[0] = s
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next tempered 32-bit output (`genrand_uint32`).
    public mutating func nextWord() -> UInt32 {
        if position >= 624 { regenerate() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func regenerate() {
        for k in 0..<624 {
            let y = (state[k] & 0x8000_0000) | (state[(k + 1) % 624] & 0x7FFF_FFFF)
            state[k] = state[(k + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
        }
        position = 0
    }

    /// `random.getrandbits(bits)` for 1 ≤ bits ≤ 64: 32-bit words least significant first, the last one
    /// keeping only its top bits.
    public mutating func bits(_ count: Int) -> UInt64 {
        precondition((1...64).contains(count), "PythonRandom.bits: \(count) bits, expected 1...64")
        if count <= 32 { return UInt64(nextWord() >> (32 - count)) }
        let low = UInt64(nextWord())
        return low | UInt64(nextWord() >> (64 - count)) << 32
    }

    /// `random.randint(low, high)`: `low` plus `_randbelow(high − low + 1)`, which draws `bit_length`
    /// bits and rejects values out of range.
    public mutating func integer(in range: ClosedRange<Int>) -> Int {
        let width = UInt64(range.upperBound - range.lowerBound) + 1
        let count = 64 - width.leadingZeroBitCount
        var r = bits(count)
        while r >= width { r = bits(count) }
        return range.lowerBound + Int(r)
    }
}
