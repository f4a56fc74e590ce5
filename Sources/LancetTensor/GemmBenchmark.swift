/// One timed matrix product C[m, n] = A[m, k]·B, with B stored [n, k] (a linear layer's weight,
/// `transposeB`) or [k, n].
public struct GemmMeasurement: Sendable, CustomStringConvertible {
    /// Rows of A and C (tokens).
    public var m: Int
    /// Columns of C (output features).
    public var n: Int
    /// The summed dimension (input features).
    public var k: Int
    /// Whether B was stored [n, k] and used transposed.
    public var transposeB: Bool
    /// The fastest timed call, in seconds.
    public var secondsPerCall: Double
    /// The median timed call, in seconds.
    public var medianSecondsPerCall: Double
    /// The number of timed calls (after one untimed warm-up call).
    public var repetitions: Int
    /// The OpenBLAS thread count during the measurement.
    public var threads: Int

    /// Floating-point operations per call, 2·m·n·k.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    /// Throughput of the fastest call, in 10⁹ FLOP/s.
    public var gflops: Double { flops / secondsPerCall / 1e9 }
    /// Throughput of the median call, in 10⁹ FLOP/s.
    public var medianGFLOPS: Double { flops / medianSecondsPerCall / 1e9 }

    /// E.g. `m=2048 n=1536 k=576 Bᵀ: 12.3 ms best (85.1 GFLOP/s), 12.9 ms median, 20 calls, 2 threads`.
    public var description: String {
        func ms(_ s: Double) -> String { String(Double(Int((s * 1e4).rounded())) / 10) }
        let g = Double(Int((gflops * 10).rounded())) / 10
        return "m=\(m) n=\(n) k=\(k)\(transposeB ? " Bᵀ" : ""): \(ms(secondsPerCall)) ms best (\(g) GFLOP/s), "
            + "\(ms(medianSecondsPerCall)) ms median, \(repetitions) calls, \(threads) threads"
    }
}

/// Measures single-precision gemm throughput, for the cost model and for `lancet bench`.
///
/// Each measurement fills A and B with seeded uniform values, makes one untimed warm-up call
/// (first-touch page faults, OpenBLAS thread start-up), then times calls on the monotonic clock
/// (`ContinuousClock`) until `minimumSeconds` have elapsed (at least one timed call). It reports the
/// **best** call as the attainable rate (least disturbed by other processes) and the median beside it.
/// OpenBLAS uses its current `threadCount`.
public enum GemmBenchmark {
    /// The model shapes of the roofline: 2048 tokens through SmolLM2-135M's linears
    /// (hidden 576, FFN 1536, vocabulary 49152), after a square 2048³ reference.
    public static let rooflineShapes: [(m: Int, n: Int, k: Int)] = [
        (2048, 2048, 2048),
        (2048, 1536, 576),  // gate / up
        (2048, 576, 1536),  // down
        (2048, 576, 576),  // q / o
        (2048, 49152, 576),  // output head
    ]

    /// Times C = A·op(B) for A [m, k] and B [n, k] (`transposeB`, default) or [k, n].
    public static func measure(m: Int, n: Int, k: Int, transposeB: Bool = true, minimumSeconds: Double = 1) -> GemmMeasurement {
        precondition(m > 0 && n > 0 && k > 0, "GemmBenchmark: empty shape \(m)×\(n)×\(k)")
        var generator = SeededGenerator(seed: 0x6E6D)
        let a = Tensor.randomUniform(shape: [m, k], in: -1..<1, generator: &generator)
        let b = Tensor.randomUniform(shape: transposeB ? [n, k] : [k, n], in: -1..<1, generator: &generator)
        var c = Tensor(zeros: [m, n])
        let clock = ContinuousClock()
        var times: [Double] = []
        c.withUnsafeMutableBufferPointer { pc in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    func call() {
                        gemm(transA: .none, transB: transposeB ? .transpose : .none, m: m, n: n, k: k,
                             alpha: 1, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: transposeB ? k : n,
                             beta: 0, c: pc.baseAddress!, ldc: n)
                    }
                    call()
                    var total = 0.0
                    repeat {
                        let elapsed = clock.measure { call() }
                        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                        times.append(seconds)
                        total += seconds
                    } while total < minimumSeconds
                }
            }
        }
        let sorted = times.sorted()
        return GemmMeasurement(
            m: m, n: n, k: k, transposeB: transposeB,
            secondsPerCall: sorted[0], medianSecondsPerCall: sorted[sorted.count / 2],
            repetitions: sorted.count, threads: threadCount)
    }

    /// Measures every shape of `rooflineShapes` (B transposed, as linear layers use it).
    public static func roofline(minimumSeconds: Double = 1) -> [GemmMeasurement] {
        rooflineShapes.map { measure(m: $0.m, n: $0.n, k: $0.k, minimumSeconds: minimumSeconds) }
    }

    /// The best rate among `measurements`, in GFLOP/s (0 for none).
    public static func peakGFLOPS(of measurements: [GemmMeasurement]) -> Double {
        measurements.map(\.gflops).max() ?? 0
    }

    /// Runs `roofline` and returns its best rate, in GFLOP/s.
    public static func peakGFLOPS(minimumSeconds: Double = 1) -> Double {
        peakGFLOPS(of: roofline(minimumSeconds: minimumSeconds))
    }
}
