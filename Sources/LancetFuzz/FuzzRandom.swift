import LancetTensor

/// The seeded generator of one case, derived from the campaign seed, the kind and the case number, so any
/// single case can be regenerated alone (`lancet-fuzz --kind gguf --from 17 --count 1`).
struct FuzzRandom {
    private var generator: SeededGenerator

    init(seed: UInt64, kind: FuzzKind, index: Int) {
        var state = seed ^ (UInt64(FuzzKind.allCases.firstIndex(of: kind)!) << 56) ^ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
        generator = SeededGenerator(seed: SeededGenerator.splitmix64(&state))
    }

    /// A number in 0..<n.
    mutating func below(_ n: Int) -> Int { generator.nextIndex(below: n) }

    /// One of `items`.
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// True with probability p.
    mutating func chance(_ p: Double) -> Bool { generator.nextDouble() < p }

    /// A random byte.
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: generator.next()) }

    /// A random 64-bit value.
    mutating func next() -> UInt64 { generator.next() }
}

/// A mutation's outcome: what it did, and whether the result is invalid by construction.
struct Applied {
    var name: String
    var mustRefuse: Bool
}

extension FuzzExpectation {
    /// `.mustRefuse` when any of the mutations made the input invalid by construction.
    init(_ applied: [Applied]) { self = applied.contains { $0.mustRefuse } ? .mustRefuse : .either }
}
