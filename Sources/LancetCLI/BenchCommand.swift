import ArgumentParser
import Foundation
import Lancet

/// `lancet bench [MODEL]`: the machine's sgemm roofline, and with a model its prefill and decode speed
/// measured in the same run, with achieved GFLOP/s against the measured sgemm peak.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure sgemm GFLOP/s (the roofline) and, given a model, prefill and decode speed.")

    @Argument(help: "A GGUF file or Hugging Face folder; without it only the sgemm roofline is measured.")
    var model: String?

    @Option(parsing: .upToNextOption, help: "Prefill lengths to measure.")
    var context: [Int] = [512, 2048]

    @Option(help: "New tokens for the decode measurement.")
    var decodeTokens = 128

    @Option(help: "Repetitions of each measurement (the best is reported).")
    var repetitions = 3

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Encodable {
        var gemm: [GemmRow]
        var peakGFLOPS: Double
        var prefill: [PrefillRow] = []
        var decode: DecodeRow?
        enum CodingKeys: String, CodingKey { case gemm, peakGFLOPS = "sgemm_peak_gflops", prefill, decode }
    }
    struct GemmRow: Encodable { var m: Int; var n: Int; var k: Int; var gflops: Double }
    struct PrefillRow: Encodable {
        var tokens: Int; var seconds: Double; var tokensPerSecond: Double; var gflops: Double; var fractionOfPeak: Double
        enum CodingKeys: String, CodingKey { case tokens, seconds, gflops
            case tokensPerSecond = "tokens_per_second", fractionOfPeak = "fraction_of_sgemm_peak" }
    }
    struct DecodeRow: Encodable {
        var tokens: Int; var seconds: Double; var tokensPerSecond: Double
        enum CodingKeys: String, CodingKey { case tokens, seconds, tokensPerSecond = "tokens_per_second" }
    }

    func run() throws {
        let roofline = GemmBenchmark.roofline()
        var report = Report(gemm: roofline.map { GemmRow(m: $0.m, n: $0.n, k: $0.k, gflops: $0.gflops) },
                            peakGFLOPS: roofline.map(\.gflops).max() ?? 0)
        if !json {
            print("sgemm (row-major, \(ProcessInfo.processInfo.activeProcessorCount) cores):")
            for r in report.gemm { print(String(format: "  %5d × %5d × %5d   %7.1f GFLOP/s", r.m, r.n, r.k, r.gflops)) }
            print(String(format: "  peak %.1f GFLOP/s", report.peakGFLOPS))
        }
        if let model {
            let m = try ModelLoader.load(model)
            let runner = ModelRunner(model: m)
            var rng = SeededGenerator(seed: 1)
            for n in context {
                guard n <= m.config.contextLength else { throw ValidationError("--context \(n) exceeds the model's context \(m.config.contextLength)") }
                let tokens = (0..<n).map { _ in Int32(rng.nextIndex(below: m.config.vocabularySize)) }
                var best = Double.infinity
                for _ in 0..<repetitions {
                    let start = Date()
                    _ = try runner.nextTokenLogits(tokens)
                    best = min(best, Date().timeIntervalSince(start))
                }
                let flops = CostModel.forwardCost(of: m, tokens: n, logitRows: 1).flops
                let row = PrefillRow(tokens: n, seconds: best, tokensPerSecond: Double(n) / best, gflops: flops / best / 1e9,
                                     fractionOfPeak: flops / best / 1e9 / report.peakGFLOPS)
                report.prefill.append(row)
                if !json {
                    print(String(format: "prefill %5d tokens: %7.1f tokens/s  %6.1f GFLOP/s  (%.0f%% of sgemm peak)",
                                 n, row.tokensPerSecond, row.gflops, 100 * row.fractionOfPeak))
                }
            }
            var best = Double.infinity
            for _ in 0..<repetitions {
                let prompt: [Int32] = [1]
                let cache = KVCache(capacity: decodeTokens + 1)
                var logits = try runner.nextTokenLogits(prompt, cache: cache)
                let start = Date()
                for p in 1...decodeTokens {
                    var next = 0
                    for i in logits.indices where logits[i] > logits[next] { next = i }
                    logits = try runner.nextTokenLogits([Int32(next)], startPosition: p, cache: cache)
                }
                best = min(best, Date().timeIntervalSince(start))
            }
            report.decode = DecodeRow(tokens: decodeTokens, seconds: best, tokensPerSecond: Double(decodeTokens) / best)
            if !json { print(String(format: "decode  %5d tokens: %7.1f tokens/s", decodeTokens, Double(decodeTokens) / best)) }
        }
        if json { print(try JSONOutput.string(report)) }
    }
}
