import ArgumentParser
import Foundation
import Lancet

/// `lancet generate MODEL --prompt TEXT`: streams a continuation (greedy unless a temperature is given).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate text from a prompt, streamed to standard output.")

    @Argument(help: "A GGUF file, a Lancet archive (.lancet) or a Hugging Face model folder.")
    var model: String

    @Option(help: "The prompt.")
    var prompt: String

    @Option(help: "Most new tokens.")
    var maxTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling mass.")
    var topP: Float = 1

    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0

    @Flag(help: "Wrap the prompt in the model's chat template (as a user turn).")
    var chat = false

    @Option(help: WeightPrecision.help)
    var weights: WeightPrecision = .f32

    @Flag(help: "Print one JSON object at the end (the text, token counts and speed) instead of streaming the text.")
    var json = false

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let m = try ModelLoader.load(model)
        guard let tokenizer = m.tokenizer as? Tokenizer else { throw ValidationError("\(model): the model has no tokenizer") }
        var text = prompt
        if chat {
            guard let template = tokenizer.chatTemplateText else { throw ValidationError("\(model): the model has no chat template") }
            text = try ChatTemplate(template).render([.init(role: "user", content: prompt)], addGenerationPrompt: true)
        }
        let ids = tokenizer.encodeText(text, addSpecialTokens: true, parseSpecial: chat)
        var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
        var generated = ""
        let start = Date()
        let generator = Generator(model: m, precision: weights)
        let new = try generator.generate(prompt: ids, maxTokens: maxTokens, sampler: &sampler) { id in
            let piece = decoder.append(id)
            if json { generated += piece } else if !piece.isEmpty { FileHandle.standardOutput.write(Data(piece.utf8)) }
            return true
        }
        let seconds = Date().timeIntervalSince(start)
        let tail = decoder.finish()
        guard json else {
            FileHandle.standardOutput.write(Data((tail + "\n").utf8))
            return
        }
        let stopped = new.last.map { generator.stopTokens.contains($0) } ?? false
        print(try JSONOutput.string(GenerationSummary(model: model, text: generated + tail, promptTokens: ids.count, generatedTokens: new.count, seconds: seconds,
                                                      tokensPerSecond: seconds > 0 ? Double(new.count) / seconds : 0, stop: stopped ? "stop-token" : "max-tokens")))
    }
}

/// The `--json` output of `lancet generate`: one object once generation ends.
struct GenerationSummary: Encodable {
    /// The model path as given.
    var model: String
    /// The generated text (special tokens skipped).
    var text: String
    /// Tokens of the prompt (after the chat template, with BOS where the model adds it) and tokens generated.
    var promptTokens: Int, generatedTokens: Int
    /// Seconds of prefill and decoding.
    var seconds: Double
    /// Generated tokens per second.
    var tokensPerSecond: Double
    /// Why generation ended: `stop-token` (EOS or end of turn) or `max-tokens`.
    var stop: String

    enum CodingKeys: String, CodingKey {
        case model, text, seconds, stop
        case promptTokens = "prompt_tokens", generatedTokens = "generated_tokens", tokensPerSecond = "tokens_per_second"
    }
}
