import ArgumentParser
import Foundation
import Lancet

/// `lancet masks MODEL --data A [--data B]`: how much the FFN channels a model's input-dependent ops choose overlap
/// between prompts of one text and across two texts.
struct MasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "masks",
        abstract: "Overlap (Jaccard) of the FFN channels a dynamic-ffn model chooses for prompts within one text and across two.",
        discussion: """
            The prompts are the first --prompt-tokens tokens of each of the first --windows windows of --context tokens \
            (the prompts an evaluation with score_from = prompt tokens reads). Each prompt runs alone; every dynamic-ffn \
            op chooses its channels from it. Reports the mean over prompt pairs of the mean over blocks of |A ∩ B| / |A ∪ B|.
            """)

    @Argument(help: "A Lancet archive (.lancet) holding dynamic-ffn ops.")
    var model: String

    @Option(help: "Text files (one or two): plain UTF-8 or JSON lines with a 'text' field; gzip allowed.")
    var data: [String] = []

    @Option(help: "Tokens per window.")
    var context = 2048

    @Option(help: "Tokens of each window read as its prompt.")
    var promptTokens = 512

    @Option(help: "Windows (prompts) per text.")
    var windows = 16

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        guard (1...2).contains(data.count) else { throw ValidationError("--data: give one or two texts, got \(data.count)") }
        for d in data { try InputPath.require(d, "--data") }
        guard promptTokens >= 1 && promptTokens <= context else { throw ValidationError("--prompt-tokens must be in 1…\(context), got \(promptTokens)") }
        guard windows >= 2 || data.count == 2 else { throw ValidationError("--windows must be at least 2 to pair prompts of one text, got \(windows)") }
        guard windows >= 1 else { throw ValidationError("--windows must be at least 1, got \(windows)") }
    }

    /// What `lancet masks` prints.
    struct Report: Encodable {
        var model: String
        var data: [String]
        var prompts: [Int]
        var promptTokens: Int
        /// Mean Jaccard within each text, in `data` order.
        var within: [Double?]
        /// Mean Jaccard across the two texts.
        var across: Double?
        enum CodingKeys: String, CodingKey { case model, data, prompts, within, across, promptTokens = "prompt_tokens" }
    }

    func run() throws {
        quiet.apply()
        let m = try ModelLoader.load(model)
        guard m.blocks.contains(where: { !$0.nodes(of: DynamicFFNOp.self).isEmpty }) else {
            throw ValidationError("\(model): the model has no dynamic-ffn op (run the dynamic-ffn pass first)")
        }
        guard let tokenizer = m.tokenizer else { throw ValidationError("\(model): the model has no tokenizer") }
        let bar = ProgressBar("masks")
        var choices: [[[String: [Int]]]] = []
        for (i, file) in data.enumerated() {
            let tokens = tokenizer.encodeText(try TextCorpus(path: file).joined(), addSpecialTokens: true, parseSpecial: false)
            let prompts = (0..<min(windows, tokens.count / context)).map { w in Array(tokens[(w * context)..<(w * context + promptTokens)]) }
            guard !prompts.isEmpty else { throw ValidationError("--data \(file): \(tokens.count) tokens hold no window of \(context)") }
            choices.append(try prompts.enumerated().map { j, p in
                bar.update(i * windows + j, of: data.count * windows)
                return try ChannelOverlap.choices(m, prompts: [p])[0]
            })
        }
        let report = Report(model: model, data: data, prompts: choices.map(\.count), promptTokens: promptTokens,
                            within: choices.map { ChannelOverlap.meanJaccard($0) },
                            across: choices.count == 2 ? ChannelOverlap.meanJaccard(choices[0], choices[1]) : nil)
        if json { print(try JSONOutput.string(report)); return }
        func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
        for (file, (n, w)) in zip(data, zip(report.prompts, report.within)) { print("within \(file) (\(n) prompts): \(f(w))") }
        if report.across != nil { print("across the two texts: \(f(report.across))") }
    }
}
