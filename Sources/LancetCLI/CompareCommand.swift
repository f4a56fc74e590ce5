import ArgumentParser
import Foundation
import Lancet

/// `lancet compare A B`: two models side by side on one screen — sizes and non-zero weights, block shapes,
/// perplexity on the same windows, prefill and decode speed measured in one run, and the drift of B's block
/// outputs from A's on a few calibration windows (with an SVG plot).
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two models: sizes, non-zero weights, block shapes, perplexity, speed and per-block output drift.",
        discussion: """
            Perplexity uses the Wanda/SparseGPT protocol on the same windows for both models. Speed alternates the \
            models (prefill of --prefill-tokens, then greedy decoding of --decode-tokens) for --rounds rounds and \
            keeps each one's best. Drift is ‖h_B − h_A‖ / ‖h_A‖ of the residual stream after each block (each model \
            on its own stream) over --samples windows of --calibration-context tokens; per block only when the \
            block counts match, else for the final normed states only.
            """)

    @Argument(help: "The reference model (GGUF, Lancet archive or Hugging Face folder).")
    var a: String

    @Argument(help: "The model compared with it.")
    var b: String

    @Option(help: "Evaluation text (WikiText-2 raw, a .txt, or .json.gz lines); no perplexity without it.")
    var data: String?

    @Option(help: "Evaluation window length.")
    var context = 2048

    @Option(help: "Evaluate only the first N windows.")
    var maxWindows = 4

    @Option(help: "Text to draw the drift windows from (defaults to --data); no drift without either.")
    var calibration: String?

    @Option(help: "Drift windows.")
    var samples = 2

    @Option(help: "Drift window length.")
    var calibrationContext = 512

    @Option(help: "Prefill length for the speed rounds (0: no speed measurement).")
    var prefillTokens = 512

    @Option(help: "Decoded tokens per speed round.")
    var decodeTokens = 32

    @Option(help: "Speed rounds (the models alternate within each).")
    var rounds = 2

    @Option(help: "Write the drift plot (SVG) here.")
    var plot: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var quiet: QuietOption

    /// What `compare` measures, per model and for the pair.
    struct Report: Encodable {
        struct Side: Encodable {
            var path: String
            var fileBytes: Int
            var parameters: Int
            var nonZeroParameters: Int
            var blocks: Int
            var blockShapes: [ModelComparison.BlockShape]
            var perplexity: Double?
            var prefillTokensPerSecond: Double?
            var decodeTokensPerSecond: Double?
        }
        var a: Side
        var b: Side
        var evaluation: String?
        var drift: ModelComparison.Drift?
        var driftWindows: String?
        var plot: String?
    }

    func validate() throws {
        try InputPath.require(a, "A", kind: .model)
        try InputPath.require(b, "B", kind: .model)
        if let data { try InputPath.require(data, "--data") }
        if let calibration { try InputPath.require(calibration, "--calibration") }
        guard context >= 2, calibrationContext >= 2 else { throw ValidationError("--context and --calibration-context must be at least 2") }
        guard maxWindows >= 1, samples >= 1, rounds >= 1 else { throw ValidationError("--max-windows, --samples and --rounds must be at least 1") }
        guard prefillTokens >= 0, decodeTokens >= 1 else { throw ValidationError("--prefill-tokens must be ≥ 0 and --decode-tokens ≥ 1") }
    }

    func run() throws {
        quiet.apply()
        let (ma, mb) = (try ModelLoader.load(a), try ModelLoader.load(b))
        guard let tokenizer = ma.tokenizer else { throw ValidationError("\(a): the model has no tokenizer") }
        func side(_ path: String, _ m: Model) -> Report.Side {
            let s = ModelComparison.summary(of: m)
            return Report.Side(path: path, fileBytes: FileSize.bytes(at: path) ?? 0, parameters: s.parameters, nonZeroParameters: s.nonZeroParameters,
                               blocks: m.blocks.count, blockShapes: s.blockShapes)
        }
        var report = Report(a: side(a, ma), b: side(b, mb))
        let bar = ProgressBar("compare")
        if let data {
            let tokens = tokenizer.encodeText(try TextCorpus(path: data).joined(), addSpecialTokens: true, parseSpecial: false)
            let ra = try PerplexityEvaluator(model: ma, context: context).evaluate(tokens: tokens, maxWindows: maxWindows) { bar.update($0, of: 2 * $1) }
            let rb = try PerplexityEvaluator(model: mb, context: context).evaluate(tokens: tokens, maxWindows: maxWindows) { bar.update($1 + $0, of: 2 * $1) }
            (report.a.perplexity, report.b.perplexity) = (ra.perplexity, rb.perplexity)
            report.evaluation = "\(data): \(ra.windows) windows of \(context) tokens, Wanda/SparseGPT protocol"
        }
        if let text = calibration ?? data {
            let set = try CalibrationSet(corpus: TextCorpus(path: text), tokenizer: tokenizer, samples: samples, length: calibrationContext, seed: 0)
            let drift = try ModelComparison.drift(of: mb, from: ma, windows: set.windows)
            report.drift = drift
            report.driftWindows = "\(text): \(samples) windows of \(calibrationContext) tokens (seed 0)"
            if let plot {
                let svg = DriftPlot.svg(perBlock: drift.perBlock ?? [], final: drift.final,
                                        title: "\(URL(fileURLWithPath: b).lastPathComponent) against \(URL(fileURLWithPath: a).lastPathComponent)")
                try AtomicFile.write(to: plot) { try $0.write(Array(svg.utf8)) }
                report.plot = plot
            }
        }
        if prefillTokens > 0 {
            var best: [(prefill: Double, decode: Double)] = [(0, 0), (0, 0)]
            for _ in 0..<rounds {
                for (i, m) in [ma, mb].enumerated() {
                    let speed = try Self.speed(m, prefill: prefillTokens, decode: decodeTokens)
                    best[i] = (max(best[i].prefill, speed.prefill), max(best[i].decode, speed.decode))
                }
            }
            (report.a.prefillTokensPerSecond, report.a.decodeTokensPerSecond) = best[0]
            (report.b.prefillTokensPerSecond, report.b.decodeTokensPerSecond) = best[1]
        }
        if json { print(try JSONOutput.string(report)) } else { print(Self.render(report), terminator: "") }
    }

    /// Prefill and greedy-decode tokens per second of `model`, one run each.
    static func speed(_ model: Model, prefill: Int, decode: Int) throws -> (prefill: Double, decode: Double) {
        let runner = ModelRunner(model: model)
        var rng = SeededGenerator(seed: 1)
        let n = min(prefill, model.config.contextLength)
        let tokens = (0..<n).map { _ in Int32(rng.nextIndex(below: model.config.vocabularySize)) }
        var start = Date()
        _ = try runner.logits(tokens, context: ExecutionContext(batch: 1, length: n), rows: [n - 1])
        let prefillRate = Double(n) / Date().timeIntervalSince(start)
        let cache = KVCache(capacity: decode + 1)
        var logits = try runner.nextTokenLogits([1], cache: cache)
        start = Date()
        for p in 1...decode {
            let next = logits.indices.max { logits[$0] < logits[$1] }!
            logits = try runner.nextTokenLogits([Int32(next)], startPosition: p, cache: cache)
        }
        return (prefillRate, Double(decode) / Date().timeIntervalSince(start))
    }

    /// The one-screen text table.
    static func render(_ r: Report) -> String {
        func mib(_ n: Int) -> String { String(format: "%.1f MiB", Double(n) / 1_048_576) }
        func millions(_ n: Int) -> String { String(format: "%.2f M", Double(n) / 1e6) }
        func share(_ s: Report.Side) -> String { millions(s.nonZeroParameters) + String(format: " (%.1f%%)", 100 * Double(s.nonZeroParameters) / Double(max(1, s.parameters))) }
        func change(_ x: Double?, _ y: Double?, percent: Bool = true) -> String {
            guard let x, let y, x != 0 else { return "" }
            return percent ? String(format: "%+.1f%%", 100 * (y / x - 1)) : String(format: "%.2f×", y / x)
        }
        func number(_ x: Double?, _ format: String) -> String { x.map { String(format: format, $0) } ?? "—" }
        var rows: [(String, String, String, String)] = [
            ("file", URL(fileURLWithPath: r.a.path).lastPathComponent, URL(fileURLWithPath: r.b.path).lastPathComponent, ""),
            ("file size", mib(r.a.fileBytes), mib(r.b.fileBytes), change(Double(r.a.fileBytes), Double(r.b.fileBytes))),
            ("parameters", millions(r.a.parameters), millions(r.b.parameters), change(Double(r.a.parameters), Double(r.b.parameters))),
            ("non-zero", share(r.a), share(r.b), change(Double(r.a.nonZeroParameters), Double(r.b.nonZeroParameters))),
            ("blocks", "\(r.a.blocks)", "\(r.b.blocks)", ""),
            ("block shapes", shapes(r.a.blockShapes), shapes(r.b.blockShapes), ""),
        ]
        if r.a.perplexity != nil {
            rows.append(("perplexity", number(r.a.perplexity, "%.4f"), number(r.b.perplexity, "%.4f"), change(r.a.perplexity, r.b.perplexity)))
        }
        if r.a.prefillTokensPerSecond != nil {
            rows.append(("prefill tok/s", number(r.a.prefillTokensPerSecond, "%.1f"), number(r.b.prefillTokensPerSecond, "%.1f"),
                         change(r.a.prefillTokensPerSecond, r.b.prefillTokensPerSecond, percent: false)))
            rows.append(("decode tok/s", number(r.a.decodeTokensPerSecond, "%.1f"), number(r.b.decodeTokensPerSecond, "%.1f"),
                         change(r.a.decodeTokensPerSecond, r.b.decodeTokensPerSecond, percent: false)))
        }
        let widths = (rows.map(\.0.count).max()!, max(12, rows.map(\.1.count).max()!), max(12, rows.map(\.2.count).max()!))
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        var out = pad("", widths.0) + "  " + pad("A", widths.1) + "  " + pad("B", widths.2) + "  B vs A\n"
        for row in rows { out += pad(row.0, widths.0) + "  " + pad(row.1, widths.1) + "  " + pad(row.2, widths.2) + "  " + row.3 + "\n" }
        if let e = r.evaluation { out += "perplexity on \(e)\n" }
        if let d = r.drift, let w = r.driftWindows {
            out += "drift of B from A on \(w):\n"
            if let per = d.perBlock, !per.isEmpty {
                let worst = per.indices.max { per[$0] < per[$1] }!
                let sample = stride(from: 0, to: per.count, by: max(1, per.count / 8)).map { "\($0): " + String(format: "%.3g", per[$0]) }
                out += "  per block " + sample.joined(separator: "  ") + "\n"
                out += "  largest " + String(format: "%.3g", per[worst]) + " after block \(worst)\n"
            }
            out += "  final normed states " + String(format: "%.3g", d.final) + "\n"
        }
        if let p = r.plot { out += "plot: \(p)\n" }
        return out
    }

    /// Block shapes in a few words: the shape shared by all blocks, or the distinct shapes with their counts.
    static func shapes(_ shapes: [ModelComparison.BlockShape]) -> String {
        var counts: [ModelComparison.BlockShape: Int] = [:]
        for s in shapes { counts[s, default: 0] += 1 }
        let described = counts.sorted { $0.value > $1.value }.prefix(2).map { s, n in
            (s.heads > 0 ? "\(s.heads)/\(s.kvHeads)h" : "no attn") + (s.ffnWidth > 0 ? " ffn \(s.ffnWidth)" : " no mlp")
                + (s.lowRankLinears > 0 ? ", \(s.lowRankLinears) low-rank" : "") + (counts.count > 1 ? " ×\(n)" : "")
        }
        return described.joined(separator: ", ") + (counts.count > 2 ? ", +\(counts.count - 2) more" : "")
    }
}
