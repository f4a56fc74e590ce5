import ArgumentParser
import Foundation
import Lancet

/// `lancet tokenize`: token ids of a text or file with a model's tokenizer, or the text of ids.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text (or, with --decode, the text of token ids).")

    @Option(help: "The model whose tokenizer is used (GGUF file or Hugging Face folder).")
    var model: String

    @Option(help: "Read the text (or, with --decode, the ids) from this file, as is.")
    var file: String?

    @Argument(help: "The text (or, with --decode, whitespace-separated ids).")
    var text: String?

    @Flag(help: "Turn ids back into text.")
    var decode = false

    @Flag(help: "Print JSON: {\"ids\": [...]} (or {\"text\": ...} with --decode).")
    var json = false

    @Flag(help: "Do not add BOS/EOS even where the model's metadata asks for them.")
    var noSpecial = false

    @Flag(help: "Treat special-token text such as <|im_start|> as plain text.")
    var noParseSpecial = false

    func validate() throws {
        if (file == nil) == (text == nil) { throw ValidationError("give either --file PATH or a TEXT argument") }
        try InputPath.require(model, "--model", kind: .model)
        if let file { try InputPath.require(file, "--file") }
    }

    func run() throws {
        let tokenizer = try ModelLoader.tokenizer(model)
        let input: String
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw IOFailure(description: "cannot read \(file)") }
            guard let s = String(data: data, encoding: .utf8) else { throw IOFailure(description: "\(file): the text is not valid UTF-8") }
            input = s
        } else {
            input = text!
        }
        if decode {
            let ids = try input.split(whereSeparator: { $0.isWhitespace || $0 == "," || $0 == "[" || $0 == "]" }).map { word -> Int32 in
                guard let id = Int32(word), id >= 0, Int(id) < tokenizer.tokenCount else {
                    throw ValidationError("'\(word)' is not a token id of this vocabulary (0..<\(tokenizer.tokenCount))")
                }
                return id
            }
            let out = tokenizer.decodeText(ids)
            print(json ? try JSONOutput.string(["text": out]) : out, terminator: json ? "\n" : "")
            return
        }
        let ids = tokenizer.encodeText(input, addSpecialTokens: !noSpecial, parseSpecial: !noParseSpecial)
        if json {
            print(try JSONOutput.string(["ids": ids]))
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
