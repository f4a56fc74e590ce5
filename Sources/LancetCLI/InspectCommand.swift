import ArgumentParser
import Foundation
import Lancet

/// `lancet inspect MODEL`: architecture, sizes, tokenizer, tensors, parameter count and provenance.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file's architecture, sizes, tokenizer, tensors and surgery provenance.")

    @Argument(help: "A GGUF file or a Hugging Face model folder (config.json + safetensors).")
    var model: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Load the model into Lancet's IR and print each block's graph.")
    var ir = false

    @Option(help: "With --ir, print only this block.")
    var block: Int?

    func run() throws {
        if ir {
            let m = try ModelLoader.load(model)
            let indices = block.map { [$0] } ?? Array(m.blocks.indices)
            for i in indices {
                guard m.blocks.indices.contains(i) else { throw ValidationError("--block \(i): the model has \(m.blocks.count) blocks") }
                print(BlockPrinter.render(m.blocks[i], index: i))
            }
            return
        }
        let summary = try ModelLoader.summary(model)
        if json {
            print(try JSONOutput.string(summary))
        } else {
            print(summary.render())
            if !summary.provenance.isEmpty { print(ProvenanceText.render(summary.provenance)) }
        }
    }
}
