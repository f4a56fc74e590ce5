import ArgumentParser
import Foundation
import Lancet

/// `lancet eval MODEL --data FILE`: perplexity by the protocol of the Wanda/SparseGPT papers.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity on a text: non-overlapping windows, every predicted position scored, ppl = exp(mean NLL).")

    @Argument(help: "A GGUF file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Evaluation text: plain UTF-8 read as is, or JSON lines with a 'text' field (documents joined by a blank line); gzip allowed.")
    var data: String

    @Option(help: "Tokens per window.")
    var context = 2048

    @Option(help: "Evaluate only the first N windows.")
    var maxWindows: Int?

    @Option(help: "Score only the predictions made at positions N… of each window; llama.cpp's llama-perplexity is --score-from 1024 with --context 2048 (for a tokenizer that adds no BOS).")
    var scoreFrom = 0

    @Option(help: "Multiply by the Float weights (f32, exact, the default) or by 16-bit copies made at load (f16, bf16): half the bytes per decoded token.")
    var weights: WeightPrecision = .f32

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        try InputPath.require(data, "--data")
        guard context >= 2 else { throw ValidationError("--context must be at least 2, got \(context)") }
        guard scoreFrom >= 0 && scoreFrom < context - 1 else {
            throw ValidationError("--score-from must be in 0…\(context - 2) for windows of \(context) tokens, got \(scoreFrom)")
        }
        if let maxWindows, maxWindows < 1 { throw ValidationError("--max-windows must be at least 1, got \(maxWindows)") }
    }

    func run() throws {
        quiet.apply()
        let m = try ModelLoader.load(model)
        guard let tokenizer = m.tokenizer else { throw ValidationError("\(model): the model has no tokenizer") }
        let corpus = try TextCorpus(path: data)
        let tokens = tokenizer.encodeText(corpus.joined(), addSpecialTokens: true, parseSpecial: false)
        var evaluator = PerplexityEvaluator(model: m, context: context, precision: weights)
        evaluator.scoreFrom = scoreFrom
        let bar = ProgressBar("eval")
        let result = try evaluator.evaluate(tokens: tokens, maxWindows: maxWindows) { bar.update($0, of: $1) }
        if json {
            print(try JSONOutput.string(result))
        } else {
            print(String(format: "perplexity %.4f  (%d windows of %d tokens, %d predicted tokens; %.1f s, %.0f tokens/s)",
                         result.perplexity, result.windows, context, result.tokens, result.seconds, result.tokensPerSecond))
        }
    }
}
