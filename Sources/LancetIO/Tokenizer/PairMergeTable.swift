/// A hash table from an adjacent pair of token ids to the merge that fuses them: its rank
/// (lower merges first) and the id of the fused token. Open addressing with linear probing;
/// built once, read-only afterwards.
struct PairMergeTable: Sendable {
    /// A merge: its priority and result.
    struct Merge: Sendable, Equatable {
        /// Lower ranks merge first.
        var rank: Int32
        /// The fused token's id.
        var result: Int32
    }

    private var keys: [UInt64]
    private var values: [Merge]
    private var mask: Int
    /// The number of pairs stored.
    private(set) var count = 0

    private static let empty = UInt64.max

    /// An empty table sized for about `capacity` pairs.
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = Array(repeating: Self.empty, count: size)
        values = Array(repeating: Merge(rank: 0, result: 0), count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Records the merge of `left` and `right`; an existing entry for the pair is kept if its rank
    /// is lower (a duplicate merge rule never outranks the first).
    mutating func insert(_ left: Int32, _ right: Int32, _ merge: Merge) {
        let k = Self.key(left, right)
        var i = slot(k)
        while keys[i] != Self.empty {
            if keys[i] == k {
                if merge.rank < values[i].rank { values[i] = merge }
                return
            }
            i = (i + 1) & mask
        }
        keys[i] = k
        values[i] = merge
        count += 1
    }

    /// The merge of `left` followed by `right`, if any. Negative ids never merge.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> Merge? {
        if left < 0 || right < 0 { return nil }
        let k = Self.key(left, right)
        var i = slot(k)
        return keys.withUnsafeBufferPointer { ks in
            while true {
                let stored = ks[i]
                if stored == k { return values[i] }
                if stored == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}
