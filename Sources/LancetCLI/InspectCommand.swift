import ArgumentParser
import Foundation
import Lancet

/// `lancet inspect MODEL`: one screen of facts (file type and bits per weight, sizes, share of zero weights,
/// architecture and per-block widths, RoPE θ, RMS ε, tokenizer and BOS/EOS, chat template family, tied
/// embeddings, provenance summary); `--tensors` adds every tensor in natural order, `--provenance` the records.
///
/// After printing the summary, inspect loads the model with the same checks as every other command, and
/// exits non-zero when the model would not load (the reason goes to standard error). With
/// `--allow-nonfinite`, weights holding NaN or ±infinity are listed instead of failing the load.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file's type, sizes, zero weights, architecture, tokenizer and surgery provenance on one screen.",
        discussion: "Exits non-zero when the model would not load, after printing what the file's header describes.")

    @Argument(help: "A GGUF file, a Lancet archive (.lancet) or a Hugging Face model folder (config.json + safetensors).")
    var model: String

    @Flag(help: "Print JSON instead of text (every tensor and provenance record included).")
    var json = false

    @Flag(help: "Also list every tensor in natural block order: type, shape, elements, bytes, share of zeros.")
    var tensors = false

    @Flag(help: "Also print each provenance record in full: input hash, calibration, passes and recipe.")
    var provenance = false

    @Flag(help: "Load the model into Lancet's IR and print each block's graph.")
    var ir = false

    @Option(help: "With --ir, print only this block.")
    var block: Int?

    @Flag(help: "List weight tensors holding NaN or infinity instead of refusing the model (also: LANCET_ALLOW_NONFINITE=1).")
    var allowNonfinite = false

    func validate() throws { try InputPath.require(model, "MODEL", kind: .model) }

    func run() throws {
        var options = LoadOptions.fromEnvironment
        if allowNonfinite { options.nonFiniteWeights = .report }
        if ir {
            let loaded = try ModelLoader.load(model, options: options)
            reportNonFinite(loaded.nonFiniteTensors)
            let m = loaded.model
            let indices = block.map { [$0] } ?? Array(m.blocks.indices)
            for i in indices {
                guard m.blocks.indices.contains(i) else { throw ValidationError("--block \(i): the model has \(m.blocks.count) blocks") }
                print(BlockPrinter.render(m.blocks[i], index: i))
            }
            return
        }
        // The header may describe what the checks below refuse: load first, print the summary either way.
        let loadError: (any Error)?
        do {
            reportNonFinite(try ModelLoader.load(model, options: options).nonFiniteTensors)
            loadError = nil
        } catch {
            loadError = error
        }
        let summary = try ModelLoader.summary(model)
        if json {
            print(try JSONOutput.string(summary))
        } else {
            print(summary.render(tensorTable: tensors, provenanceLine: ProvenanceText.summary(summary.provenance)))
            if provenance && !summary.provenance.isEmpty { print(ProvenanceText.render(summary.provenance)) }
        }
        if let loadError { throw InspectError(underlying: loadError) }
    }

    private func reportNonFinite(_ findings: [NonFiniteTensor]) {
        for finding in findings { FileHandle.standardError.write(Data("warning: \(model): \(finding)\n".utf8)) }
    }
}

/// A model whose header could be summarised but which would not load.
struct InspectError: Error, CustomStringConvertible {
    /// Why the load failed.
    let underlying: any Error
    var description: String { "the model would not load: \(underlying)" }
}
