import ArgumentParser
import Foundation
import Lancet

/// `lancet bench [MODEL]`: the machine's sgemm roofline, and with a model its prefill and decode speed
/// measured in the same run, with achieved GFLOP/s against the measured sgemm peak.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure sgemm GFLOP/s (the roofline) and, given a model, prefill and decode speed.")

    @Argument(help: "A GGUF file, a Lancet archive (.lancet) or a Hugging Face folder; without it only the sgemm roofline is measured.")
    var model: String?

    @Option(parsing: .upToNextOption, help: "Prefill lengths to measure.")
    var context: [Int] = [512, 2048]

    @Option(help: "New tokens for the decode measurement (0: no decode measurement).")
    var decodeTokens = 128

    @Option(help: "Tokens of the prompt prefilled before the decode measurement (an input-dependent model chooses from it).")
    var promptTokens = 1

    @Option(help: "Repetitions of each measurement (the best is reported).")
    var repetitions = 3

    @Option(help: "Sequences per prefill call (calibration forwards batch 4 windows of 2048 tokens per call).")
    var batch = 1

    @Flag(help: "Also print the wall time per op kind of prefill and decode and the feed-forward's time per token (one extra, instrumented run of each).")
    var profile = false

    @Option(help: "Instead of prefill and decode: time the whole-model loss-gradient sweep over this many seeded windows and report its peak memory.")
    var gradientWindows = 0

    @Flag(help: "Instead of prefill and decode: measure this machine's latency table of MODEL's block shapes (what `search` with `budget: latency` predicts from) and cache it.")
    var latencyTable = false

    @Option(help: "Prefill tokens of the latency table (the search's `tokens`).")
    var latencyTokens = 2048

    @Option(help: "FFN width step of the latency table's grid (the search's `latency_grid`).")
    var latencyGrid = 256

    @Option(help: ArgumentHelp("Also predict MODEL's prefill of --latency-tokens tokens from the latency table cached on this machine for DENSE (the dense model a search started from: what `search` predicts), beside the measured prefill.", valueName: "dense"))
    var latencyFrom: String?

    @Option(help: "Tokens per window of the gradient sweep.")
    var gradientLength = 2048

    @Option(help: WeightPrecision.help)
    var weights: WeightPrecision = .f32

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        if let model { try InputPath.require(model, "MODEL", kind: .model) }
        if let latencyFrom {
            guard model != nil, !latencyTable else { throw ValidationError("--latency-from predicts a MODEL's prefill; give a MODEL, without --latency-table") }
            try InputPath.require(latencyFrom, "--latency-from", kind: .model)
        }
        guard promptTokens >= 1 else { throw ValidationError("--prompt-tokens must be at least 1, got \(promptTokens)") }
        guard decodeTokens >= 0 else { throw ValidationError("--decode-tokens must be at least 0, got \(decodeTokens)") }
    }

    struct Report: Encodable {
        var gemm: [GemmRow]
        var peakGFLOPS: Double
        /// The machine's read bandwidth (all cores), decode's roofline.
        var readGigabytesPerSecond: Double
        var prefill: [PrefillRow] = []
        var decode: DecodeRow?
        var gradients: GradientRow?
        var latency: LatencyTable?
        var predicted: PredictedPrefill?
        enum CodingKeys: String, CodingKey { case gemm, peakGFLOPS = "sgemm_peak_gflops", readGigabytesPerSecond = "read_gigabytes_per_second"
            case prefill, decode, gradients, latency = "latency_table", predicted = "predicted_prefill" }
    }
    /// MODEL's prefill as the dense model's cached latency table predicts it (`--latency-from`).
    struct PredictedPrefill: Encodable {
        var tokens: Int; var seconds: Double
        /// The dense model's prefill as the table predicts it and as it was measured when the table was made.
        var denseSeconds: Double; var denseMeasuredSeconds: Double
        enum CodingKeys: String, CodingKey { case tokens, seconds, denseSeconds = "dense_seconds", denseMeasuredSeconds = "dense_measured_seconds" }
    }

    /// MODEL's prefill predicted by the latency table cached for `densePath`'s model on this machine.
    func predictPrefill(_ m: Model, densePath: String) throws -> PredictedPrefill {
        let dense = try ModelLoader.load(densePath)
        guard let table = LatencyTable.cached(for: dense, tokens: latencyTokens) else {
            throw ValidationError("--latency-from: no latency table of \(densePath) at \(latencyTokens) tokens is cached on this machine; measure it with `lancet bench \(densePath) --latency-table --latency-tokens \(latencyTokens)`")
        }
        guard m.blocks.count == dense.blocks.count, m.config.hiddenSize == dense.config.hiddenSize, let architecture = m.searchArchitecture,
              let denseArchitecture = dense.searchArchitecture else {
            throw ValidationError("--latency-from: MODEL's blocks are not a search of \(densePath)'s (\(m.blocks.count) blocks of width \(m.config.hiddenSize) against \(dense.blocks.count) of \(dense.config.hiddenSize))")
        }
        let seconds = table.predict(architecture)
        guard seconds.isFinite else {
            throw ValidationError("--latency-from: a block of MODEL has a shape the table of \(densePath) does not cover (more heads or channels than the dense block)")
        }
        let row = PredictedPrefill(tokens: latencyTokens, seconds: seconds, denseSeconds: table.predict(denseArchitecture), denseMeasuredSeconds: table.dense)
        if !json {
            print(String(format: "prefill %5d tokens predicted by the latency table of %@: %.3f s (dense %.3f s predicted, %.3f s measured with the table)",
                         latencyTokens, densePath, seconds, row.denseSeconds, row.denseMeasuredSeconds))
        }
        return row
    }
    struct GradientRow: Encodable {
        var windows: Int; var length: Int; var seconds: Double
        /// Resident bytes with the model loaded, before the sweep; the sweep's peak; one window's block-boundary activations.
        var residentBeforeBytes: Int; var peakBytes: Int; var boundaryBytes: Int
        enum CodingKeys: String, CodingKey { case windows, length, seconds
            case residentBeforeBytes = "resident_before_bytes", peakBytes = "peak_bytes", boundaryBytes = "boundary_bytes" }
    }

    /// The whole-model loss gradient over `gradientWindows` seeded windows, one window per backward, with every
    /// linear's input and output gradient captured (what K-FAC reads): time and peak memory against what the
    /// model and the block boundaries need.
    func gradientSweep(_ m: Model) throws -> GradientRow {
        guard gradientLength >= 2, gradientLength <= m.config.contextLength else {
            throw ValidationError("--gradient-length must be in 2...\(m.config.contextLength), got \(gradientLength)")
        }
        var rng = SeededGenerator(seed: 1)
        let windows = (0..<gradientWindows).map { _ in (0..<gradientLength).map { _ in Int32(rng.nextIndex(below: m.config.vocabularySize)) } }
        let linears = m.blocks.first.map { $0.nodes(of: LinearOp.self) } ?? []
        let before = ProcessMemory.residentBytes() ?? 0
        let gradients = ModelGradients(model: m)
        let start = Date()
        for (w, window) in windows.enumerated() {
            try gradients.backward(windows: [window], firstWindow: w, normalizer: Double(windows.count * (gradientLength - 1)),
                                   capture: Set(linears.map { $0.node.inputs[0] }), captureGradients: Set(linears.map { $0.node.outputs[0] })) { _ in }
            if !json { Console.progress("gradient window \(w + 1)/\(windows.count)\n") }
        }
        let seconds = Date().timeIntervalSince(start)
        let row = GradientRow(windows: gradientWindows, length: gradientLength, seconds: seconds, residentBeforeBytes: before,
                              peakBytes: ProcessMemory.peakResidentBytes() ?? 0,
                              boundaryBytes: (m.blocks.count + 1) * gradientLength * m.config.hiddenSize * 4)
        if !json {
            let mib = { (b: Int) in String(format: "%.0f MiB", Double(b) / 1_048_576) }
            print(String(format: "gradient sweep %d × %d tokens: %.1f s (%.1f s per window)", gradientWindows, gradientLength, seconds,
                         seconds / Double(max(gradientWindows, 1))))
            print("  resident before \(mib(row.residentBeforeBytes)), peak \(mib(row.peakBytes)): the sweep added "
                  + "\(mib(row.peakBytes - row.residentBeforeBytes)) over the loaded model; one window's block boundaries are \(mib(row.boundaryBytes))")
        }
        return row
    }
    struct GemmRow: Encodable { var m: Int; var n: Int; var k: Int; var gflops: Double }
    struct PrefillRow: Encodable {
        var tokens: Int; var batch: Int; var seconds: Double; var tokensPerSecond: Double; var gflops: Double; var fractionOfPeak: Double
        /// Seconds per op kind of one instrumented run (with `--profile`).
        var opSeconds: [String: Double]?
        /// The feed-forward's (the `mlp` nodes', dense or mixture) seconds per token in that run.
        var ffnSecondsPerToken: Double?
        enum CodingKeys: String, CodingKey { case tokens, batch, seconds, gflops
            case tokensPerSecond = "tokens_per_second", fractionOfPeak = "fraction_of_sgemm_peak", opSeconds = "op_seconds"
            case ffnSecondsPerToken = "ffn_seconds_per_token" }
    }
    struct DecodeRow: Encodable {
        var tokens: Int; var seconds: Double; var tokensPerSecond: Double
        /// Weight bytes one decoded token reads (every block parameter and the output head) and the rate at which it read them.
        var bytesPerToken: Double; var gigabytesPerSecond: Double; var fractionOfBandwidth: Double
        /// Seconds per op kind of one instrumented run (with `--profile`); "head" is the final norm and output head.
        var opSeconds: [String: Double]?
        /// The feed-forward's (the `mlp` nodes', dense or mixture) seconds per decoded token in that run.
        var ffnSecondsPerToken: Double?
        enum CodingKeys: String, CodingKey { case tokens, seconds, tokensPerSecond = "tokens_per_second", bytesPerToken = "bytes_per_token"
            case gigabytesPerSecond = "gigabytes_per_second", fractionOfBandwidth = "fraction_of_read_bandwidth", opSeconds = "op_seconds"
            case ffnSecondsPerToken = "ffn_seconds_per_token" }
    }

    /// Greedy decoding of `decodeTokens` tokens after a prompt of `promptTokens` tokens, best of `repetitions`; with `profile`
    /// one more, instrumented run splits the time by op kind.
    /// The bandwidth a shared machine gives varies from second to second, so it is measured again after decoding and
    /// the better of the two readings is the roofline (`report.readGigabytesPerSecond`): a slow first reading never
    /// flatters the fraction.
    func decode(_ runner: ModelRunner, report: inout Report) throws -> DecodeRow {
        func run(profiled: Bool) throws -> (seconds: Double, ops: [String: Double]?, ffn: Double) {
            let cache = KVCache(capacity: decodeTokens + promptTokens)
            let vocabulary = runner.model.config.vocabularySize
            let prompt = promptTokens == 1 ? [Int32(1)] : (0..<promptTokens).map { Int32((7 * $0 + 1) % vocabulary) }
            var logits = try runner.nextTokenLogits(prompt, cache: cache)
            var ops: [String: Double]? = profiled ? [:] : nil
            var ffn = 0.0
            let start = Date()
            for p in promptTokens..<(promptTokens + decodeTokens) {
                var next = 0
                for i in logits.indices where logits[i] > logits[next] { next = i }
                let context = ExecutionContext(batch: 1, length: 1, startPosition: p, cache: cache)
                context.opSeconds = profiled ? [:] : nil
                context.regionSeconds = profiled ? [:] : nil
                let stepStart = Date()
                let hidden = try runner.hiddenStates([Int32(next)], context: context)
                let headStart = Date()
                logits = runner.logits(normed: runner.finalNorm(hidden)).scalars
                if profiled, let step = context.opSeconds {
                    for (kind, s) in step { ops![kind, default: 0] += s }
                    ops!["head", default: 0] += Date().timeIntervalSince(headStart)
                    ops!["other", default: 0] += headStart.timeIntervalSince(stepStart) - step.values.reduce(0, +)
                    ffn += context.regionSeconds?[Self.ffnRegion] ?? 0
                }
            }
            return (Date().timeIntervalSince(start), ops, ffn)
        }
        var best = Double.infinity
        for _ in 0..<repetitions { best = min(best, try run(profiled: false).seconds) }
        let again = MemoryBandwidth.measure()
        if !json { print(String(format: "memory read after decoding: %.1f GB/s", again.gigabytesPerSecond)) }
        report.readGigabytesPerSecond = max(report.readGigabytesPerSecond, again.gigabytesPerSecond)
        let readGigabytesPerSecond = report.readGigabytesPerSecond
        // The cost model counts 4 bytes per parameter; a 16-bit copy reads 2 of them.
        let bytes = CostModel.forwardCost(of: runner.model, tokens: 1, logitRows: 1).parameterBytes - Double(runner.halfWeights?.byteCount ?? 0)
        let rate = Double(decodeTokens) / best
        var row = DecodeRow(tokens: decodeTokens, seconds: best, tokensPerSecond: rate, bytesPerToken: bytes,
                            gigabytesPerSecond: bytes * rate / 1e9, fractionOfBandwidth: bytes * rate / 1e9 / readGigabytesPerSecond)
        if profile {
            let profiled = try run(profiled: true)
            (row.opSeconds, row.ffnSecondsPerToken) = (profiled.ops, profiled.ffn / Double(decodeTokens))
        }
        if !json {
            print(String(format: "decode  %5d tokens: %7.1f tokens/s  %6.1f GB/s of weights (%.0f MB per token, %.0f%% of the read bandwidth)",
                         decodeTokens, rate, row.gigabytesPerSecond, bytes / 1e6, 100 * row.fractionOfBandwidth))
            if let ops = row.opSeconds { printProfile(ops, ffnPerToken: row.ffnSecondsPerToken) }
        }
        return row
    }

    /// Measures and caches the latency table of `m`'s block shapes on this machine (`LatencyTable`), printing it.
    func measureLatencyTable(_ m: Model) throws -> LatencyTable {
        let space = try SearchSpace(model: m, searched: { _ in true }, ffnStep: latencyGrid, minChannels: latencyGrid, depth: false)
        guard let first = space.uniformBlock else { throw ValidationError("--latency-table needs a model whose blocks all have the same shape") }
        guard latencyTokens >= 1, latencyTokens <= m.config.contextLength else {
            throw ValidationError("--latency-tokens must be in 1...\(m.config.contextLength), got \(latencyTokens)")
        }
        let table = try LatencyTable.measure(m, space: first, tokens: latencyTokens, gridStep: latencyGrid, repetitions: repetitions) { done, total in
            if !json { Console.progress("latency table \(done)/\(total)\n") }
        }
        let url = try table.save(for: m)
        if !json {
            print(String(format: "latency table, prefill of %d tokens (best of %d), %@:", latencyTokens, repetitions, table.machine))
            for (key, s) in table.attention.sorted(by: { $0.key < $1.key }) where s > 0 {
                print(String(format: "  attention %@ groups×heads  %8.2f ms", key, s * 1e3))
            }
            for (w, s) in zip(table.widths, table.mlp) where w > 0 { print(String(format: "  MLP %5d channels       %8.2f ms", w, s * 1e3)) }
            let space = Array(repeating: first.dense, count: m.blocks.count)
            print(String(format: "  outside the blocks        %8.2f ms; dense model %.2f ms predicted, %.2f ms measured", table.fixed * 1e3,
                         table.predict(space) * 1e3, table.dense * 1e3))
            print("cached in \(url.path)")
        }
        return table
    }

    /// The node-name region of the feed-forward (`mlp.gate`, `mlp.moe`, …).
    static let ffnRegion = "mlp"

    /// Seconds per op kind, largest first, with their shares, then the feed-forward's time per token.
    func printProfile(_ ops: [String: Double], ffnPerToken: Double?) {
        defer { if let ffnPerToken { print(String(format: "    FFN (mlp nodes) %.4f ms per token", ffnPerToken * 1e3)) } }
        let total = ops.values.reduce(0, +)
        for (kind, s) in ops.sorted(by: { $0.value > $1.value }) {
            print("    " + kind.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: " %7.3f s  %5.1f%%", s, 100 * s / total))
        }
    }

    func run() throws {
        quiet.apply()
        let roofline = GemmBenchmark.roofline()
        let bandwidth = MemoryBandwidth.measure()
        var report = Report(gemm: roofline.map { GemmRow(m: $0.m, n: $0.n, k: $0.k, gflops: $0.gflops) },
                            peakGFLOPS: roofline.map(\.gflops).max() ?? 0, readGigabytesPerSecond: bandwidth.gigabytesPerSecond)
        if !json {
            print("sgemm (row-major, \(ProcessInfo.processInfo.activeProcessorCount) cores):")
            for r in report.gemm { print(String(format: "  %5d × %5d × %5d   %7.1f GFLOP/s", r.m, r.n, r.k, r.gflops)) }
            print(String(format: "  peak %.1f GFLOP/s", report.peakGFLOPS))
            print(String(format: "memory read (%d threads, %d MiB): %.1f GB/s", bandwidth.threads, bandwidth.bytes >> 20, bandwidth.gigabytesPerSecond))
        }
        if let model, latencyTable {
            report.latency = try measureLatencyTable(try ModelLoader.load(model))
        } else if let model, gradientWindows > 0 {
            report.gradients = try gradientSweep(try ModelLoader.load(model))
        } else if let model {
            let m = try ModelLoader.load(model)
            if let latencyFrom { report.predicted = try predictPrefill(m, densePath: latencyFrom) }
            let runner = ModelRunner(model: m, precision: weights)
            var rng = SeededGenerator(seed: 1)
            for n in context {
                guard n <= m.config.contextLength else { throw ValidationError("--context \(n) exceeds the model's context \(m.config.contextLength)") }
                let tokens = (0..<(n * batch)).map { _ in Int32(rng.nextIndex(below: m.config.vocabularySize)) }
                func prefill(profiled: Bool) throws -> (seconds: Double, ops: [String: Double]?, ffn: Double) {
                    let context = ExecutionContext(batch: batch, length: n)
                    if profiled { (context.opSeconds, context.regionSeconds) = ([:], [:]) }
                    let start = Date()
                    _ = try runner.logits(tokens, context: context, rows: (0..<batch).map { $0 * n + n - 1 })
                    return (Date().timeIntervalSince(start), context.opSeconds, context.regionSeconds?[Self.ffnRegion] ?? 0)
                }
                var best = Double.infinity
                for _ in 0..<repetitions { best = min(best, try prefill(profiled: false).seconds) }
                let flops = Double(batch) * CostModel.forwardCost(of: m, tokens: n, logitRows: 1).flops
                var row = PrefillRow(tokens: n, batch: batch, seconds: best, tokensPerSecond: Double(n * batch) / best,
                                     gflops: flops / best / 1e9, fractionOfPeak: flops / best / 1e9 / report.peakGFLOPS)
                if profile {
                    let profiled = try prefill(profiled: true)
                    (row.opSeconds, row.ffnSecondsPerToken) = (profiled.ops, profiled.ffn / Double(n * batch))
                }
                report.prefill.append(row)
                if !json {
                    print(String(format: "prefill %5d tokens × %d: %7.1f tokens/s  %6.1f GFLOP/s  (%.0f%% of sgemm peak)",
                                 n, batch, row.tokensPerSecond, row.gflops, 100 * row.fractionOfPeak))
                    if let ops = row.opSeconds { printProfile(ops, ffnPerToken: row.ffnSecondsPerToken) }
                }
            }
            if decodeTokens > 0 { report.decode = try decode(runner, report: &report) }
        }
        if json { print(try JSONOutput.string(report)) }
    }
}
