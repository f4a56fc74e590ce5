/// Measures how fast the cores together read memory: decode's roofline, as `GemmBenchmark` is prefill's.
///
/// A buffer far larger than the caches (default 512 MiB, about a 135M-parameter model in F32) is filled once,
/// then summed by every core at once, each its own contiguous part, with the same 16-lane loads as
/// `matrixVector`; the best of `repetitions` passes is reported, in bytes per second.
public enum MemoryBandwidth {
    /// One measurement.
    public struct Measurement: Sendable {
        /// Bytes read per pass.
        public var bytes: Int
        /// The fastest pass, in seconds.
        public var seconds: Double
        /// Threads that read together.
        public var threads: Int
        /// Bytes per second of the fastest pass, in 10⁹.
        public var gigabytesPerSecond: Double { Double(bytes) / seconds / 1e9 }
    }

    /// Reads `bytes` (rounded down to whole 64-byte lines) `repetitions` times with `threads` threads.
    public static func measure(bytes: Int = 512 << 20, repetitions: Int = 10, threads: Int = processorCount) -> Measurement {
        let count = max(16, bytes / 64 * 16)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        let parts = max(1, threads)
        WorkerPool.shared.run(parts: parts) { p in
            let range = count * p / parts..<count * (p + 1) / parts
            (buffer + range.lowerBound).initialize(repeating: 1, count: range.count)
        }
        var best = Double.infinity
        var sink: Float = 0
        for _ in 0..<max(1, repetitions) {
            var sums = [Float](repeating: 0, count: parts)
            let start = ContinuousClock.now
            sums.withUnsafeMutableBufferPointer { s in
                WorkerPool.shared.run(parts: parts) { p in
                    let first = count * p / parts / 16 * 16, last = p == parts - 1 ? count : count * (p + 1) / parts / 16 * 16
                    s[p] = sumOfElements(buffer + first, count: last - first)
                }
            }
            let d = ContinuousClock.now - start
            best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
            sink += sums.reduce(0, +)
        }
        precondition(sink.isFinite, "MemoryBandwidth: sum of ones is not finite")
        return Measurement(bytes: count * 4, seconds: best, threads: parts)
    }

    /// Σ p[i] over a multiple of 16 elements, in four independent 16-lane sums.
    static func sumOfElements(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var j = 0
        while j + 64 <= count {
            a0 += load16(p + j); a1 += load16(p + j + 16); a2 += load16(p + j + 32); a3 += load16(p + j + 48)
            j += 64
        }
        while j + 16 <= count { a0 += load16(p + j); j += 16 }
        return (a0 + a1 + a2 + a3).sum()
    }
}
