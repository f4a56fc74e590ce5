import ArgumentParser
import Foundation
import Lancet

/// `lancet eval MODEL --data FILE`: perplexity by the papers' protocol (the default) or llama.cpp's.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity on a text: non-overlapping windows, ppl = exp(mean NLL), by the papers' protocol or llama.cpp's.",
        discussion: """
            --protocol papers (the default, the Wanda/SparseGPT protocol) scores every prediction of each window; \
            --protocol llama.cpp scores as llama-perplexity does: the second half of each window, with BOS placed \
            first in every window when the tokenizer adds BOS. The two differ by about 20% on the same model. \
            Every output names the protocol, model, data, context and windows.
            """)

    @Argument(help: "A GGUF file, a Lancet archive (.lancet) or a Hugging Face model folder.")
    var model: String

    @Option(help: "Evaluation text: plain UTF-8 read as is, or JSON lines with a 'text' field (documents joined by a blank line); gzip allowed.")
    var data: String

    @Option(name: .customLong("protocol"), help: "papers (every prediction scored) or llama.cpp (llama-perplexity's: the second half of each window, BOS first in every window when the tokenizer adds BOS).")
    var evaluationProtocol: PerplexityProtocol = .papers

    @Option(help: "Tokens per window.")
    var context = 2048

    @Option(help: "Evaluate only the first N windows.")
    var maxWindows: Int?

    @Option(help: "Papers' protocol only: score only the predictions made at positions N… of each window.")
    var scoreFrom: Int?

    @Option(help: WeightPrecision.help)
    var weights: WeightPrecision = .f32

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        try InputPath.require(data, "--data")
        guard context >= 2 else { throw ValidationError("--context must be at least 2, got \(context)") }
        if let scoreFrom {
            guard evaluationProtocol == .papers else {
                throw ValidationError("--score-from applies to --protocol papers; llama.cpp's protocol scores from context/2 (\(context / 2))")
            }
            guard scoreFrom >= 0 && scoreFrom < context - 1 else {
                throw ValidationError("--score-from must be in 0…\(context - 2) for windows of \(context) tokens, got \(scoreFrom)")
            }
        }
        if let maxWindows, maxWindows < 1 { throw ValidationError("--max-windows must be at least 1, got \(maxWindows)") }
    }

    func run() throws {
        quiet.apply()
        let m = try ModelLoader.load(model)
        guard let tokenizer = m.tokenizer else { throw ValidationError("\(model): the model has no tokenizer") }
        let corpus = try TextCorpus(path: data)
        let tokens = tokenizer.encodeText(corpus.joined(), addSpecialTokens: true, parseSpecial: false)
        var evaluator = PerplexityEvaluator(model: m, context: context, protocol: evaluationProtocol, precision: weights)
        if let scoreFrom { evaluator.scoreFrom = scoreFrom }
        let bar = ProgressBar("eval")
        let result = try evaluator.evaluate(tokens: tokens, maxWindows: maxWindows) { bar.update($0, of: $1) }
        let report = EvalReport(model: model, data: data, dataTokens: tokens.count, result: result)
        print(json ? try JSONOutput.string(report) : report.text)
    }
}

extension PerplexityProtocol: ExpressibleByArgument {}

/// What `lancet eval` prints: the result with the protocol, model, data, context and windows it was measured on.
struct EvalReport: Encodable {
    /// The model path as given.
    var model: String
    /// The data path as given.
    var data: String
    /// Tokens of the whole text.
    var dataTokens: Int
    /// The evaluation.
    var result: PerplexityEvaluator.Result

    enum CodingKeys: String, CodingKey { case model, data, dataTokens = "data_tokens" }

    /// The result's keys (perplexity, protocol, context, windows, …) beside model, data and data_tokens.
    func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(data, forKey: .data)
        try c.encode(dataTokens, forKey: .dataTokens)
    }

    /// Five lines: perplexity, protocol, model, data, windows.
    var text: String {
        [
            String(format: "perplexity  %.4f", result.perplexity),
            "protocol    \(result.protocolSummary)",
            "model       \(model)",
            "data        \(data): \(dataTokens) tokens, \(dataTokens / result.context) whole windows",
            String(format: "windows     %d of %d tokens, %d predictions scored; %.1f s, %.0f tokens/s",
                   result.windows, result.context, result.tokens, result.seconds, result.tokensPerSecond),
        ].joined(separator: "\n")
    }
}
