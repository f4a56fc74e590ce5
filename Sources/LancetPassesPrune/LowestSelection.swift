/// Picks the `k` lowest of a run of scores in linear expected time: the same entries a sort by
/// (score, index) would put first, without sorting (quickselect of the k-th score, then one scan).
///
/// Mask choice sorted every row (or every column block) of every linear before; on a 32-window SmolLM2
/// run that was a few percent of Wanda's and SparseGPT's time, single-threaded.
enum LowestSelection {
    /// Calls `mark(i)` for the `k` entries of `values[0..<count]` that come first in (value, index) order,
    /// in increasing index order. `scratch` holds at least `count` floats.
    static func mark(_ values: UnsafePointer<Float>, count: Int, k: Int, scratch: UnsafeMutablePointer<Float>,
                     _ mark: (Int) -> Void) {
        guard k > 0 else { return }
        guard k < count else { for i in 0..<count { mark(i) }; return }
        scratch.update(from: values, count: count)
        let threshold = select(scratch, count: count, rank: k - 1)
        var below = 0
        for i in 0..<count where values[i] < threshold { below += 1 }
        var ties = k - below                                   // entries equal to the threshold, lowest index first
        for i in 0..<count {
            if values[i] < threshold { mark(i) } else if ties > 0 && values[i] == threshold { mark(i); ties -= 1 }
        }
    }

    /// `mark(_:count:k:scratch:_:)` with a scratch buffer of its own, for a single run of scores.
    static func mark(_ values: UnsafePointer<Float>, count: Int, k: Int, _ mark: (Int) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(count, 1)) { scratch in
            Self.mark(values, count: count, k: k, scratch: scratch.baseAddress!, mark)
        }
    }

    /// The value of rank `rank` (0-based) among `a[0..<count]`, reordering `a` (Hoare quickselect with a
    /// median-of-three pivot; short ranges by insertion sort).
    static func select(_ a: UnsafeMutablePointer<Float>, count: Int, rank: Int) -> Float {
        precondition(rank >= 0 && rank < count, "LowestSelection: rank \(rank) of \(count)")
        var lo = 0, hi = count - 1
        while hi - lo >= 16 {
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            // a[lo...j] ≤ pivot, a[i...hi] ≥ pivot, and everything strictly between equals it.
            if rank <= j { hi = j } else if rank >= i { lo = i } else { return pivot }
        }
        if hi > lo {
            for i in (lo + 1)...hi {
                let v = a[i]
                var j = i - 1
                while j >= lo && a[j] > v { a[j + 1] = a[j]; j -= 1 }
                a[j + 1] = v
            }
        }
        return a[rank]
    }
}

private extension UnsafeMutablePointer where Pointee == Float {
    func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}
