import ArgumentParser
import Lancet

/// `lancet inspect MODEL`: placeholder until the inspector lands.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a model file's architecture, tokenizer and tensors.")
    @Argument(help: "A GGUF file or a Hugging Face model folder.") var model: String
    func run() throws {
        let f = try GGUFFile(path: model)
        for (k, v) in f.metadataEntries { print(k, v) }
        for t in f.tensors { print(t.name, t.type.name, t.shape) }
    }
}
