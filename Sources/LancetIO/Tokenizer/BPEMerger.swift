/// Applies BPE merges to one word: repeatedly fuses the adjacent pair with the lowest rank,
/// the leftmost pair first among equal ranks, until no adjacent pair has a merge.
///
/// This is the order llama.cpp's priority queue produces (`llm_bigram_bpe`, and `llm_bigram_spm`
/// with ranks ordered by descending score). Short words use a direct scan
/// (`mergeByScanning`, quadratic but allocation-light); long words a heap over a linked list
/// (`mergeWithHeap`, n log n). Tests check that both agree.
struct BPEMerger: Sendable {
    /// The merges by pair of ids.
    let table: PairMergeTable

    /// Words up to this many symbols use the direct scan.
    static let scanLimit = 64

    /// Merges `symbols` (token ids; negative ids never merge) in place.
    func merge(_ symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= Self.scanLimit { mergeByScanning(&symbols) } else { mergeWithHeap(&symbols) }
    }

    /// The reference algorithm: find the lowest-ranked adjacent pair by scanning, fuse it, repeat.
    func mergeByScanning(_ symbols: inout [Int32]) {
        var n = symbols.count
        if n < 2 { return }
        var ranks = [Int32](repeating: .max, count: n - 1)
        var results = [Int32](repeating: -1, count: n - 1)
        for i in 0..<(n - 1) {
            if let m = table.lookup(symbols[i], symbols[i + 1]) {
                ranks[i] = m.rank
                results[i] = m.result
            }
        }
        while n > 1 {
            var best = -1
            var bestRank = Int32.max
            for i in 0..<(n - 1) where ranks[i] < bestRank {
                bestRank = ranks[i]
                best = i
            }
            if best < 0 { break }
            symbols[best] = results[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            results.remove(at: best)
            n -= 1
            if best > 0 {
                let m = table.lookup(symbols[best - 1], symbols[best])
                ranks[best - 1] = m?.rank ?? .max
                results[best - 1] = m?.result ?? -1
            }
            if best < n - 1 {
                let m = table.lookup(symbols[best], symbols[best + 1])
                ranks[best] = m?.rank ?? .max
                results[best] = m?.result ?? -1
            }
        }
    }

    private struct Candidate {
        var rank: Int32
        var left: Int32
        var right: Int32
        var rightID: Int32
        var leftID: Int32
        var result: Int32

        @inline(__always)
        func precedes(_ o: Candidate) -> Bool { rank < o.rank || (rank == o.rank && left < o.left) }
    }

    /// The same merges for long words: candidate pairs in a binary heap keyed by (rank, position),
    /// symbols in a doubly linked list; a popped candidate whose symbols have changed is skipped.
    func mergeWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        if n < 2 { return }
        var ids = symbols
        var prev = (0..<n).map { Int32($0) - 1 }
        var next = (0..<n).map { $0 + 1 < n ? Int32($0 + 1) : -1 }
        var heap: [Candidate] = []
        heap.reserveCapacity(n)

        func push(_ c: Candidate) {
            heap.append(c)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard heap[i].precedes(heap[p]) else { break }
                heap.swapAt(i, p)
                i = p
            }
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count && heap[l].precedes(heap[m]) { m = l }
                    if r < heap.count && heap[r].precedes(heap[m]) { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
            return top
        }
        func consider(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            let a = ids[Int(left)], b = ids[Int(right)]
            if let m = table.lookup(a, b) {
                push(Candidate(rank: m.rank, left: left, right: right, rightID: b, leftID: a, result: m.result))
            }
        }

        for i in 0..<(n - 1) { consider(Int32(i), Int32(i + 1)) }
        while !heap.isEmpty {
            let c = pop()
            let l = Int(c.left), r = Int(c.right)
            guard ids[l] == c.leftID, ids[r] == c.rightID, next[l] == c.right else { continue }
            ids[l] = c.result
            ids[r] = Int32.min  // dead
            let after = next[r]
            next[l] = after
            if after >= 0 { prev[Int(after)] = c.left }
            consider(prev[l], c.left)
            consider(c.left, after)
        }
        symbols.removeAll(keepingCapacity: true)
        var i: Int32 = 0
        while i >= 0 {
            symbols.append(ids[Int(i)])
            i = next[Int(i)]
        }
    }
}
