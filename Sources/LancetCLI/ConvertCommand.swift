import ArgumentParser
import Foundation
import Lancet

/// `lancet convert IN OUT`: rewrites a model in another format — a GGUF file (`OUT` ends in `.gguf`), a Lancet archive
/// (`.lancet`) or a Hugging Face folder — with its surgery provenance, e.g. to hand a collapsed GGUF to transformers.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a model as a GGUF file (OUT ends in .gguf), a Lancet archive (.lancet) or a Hugging Face folder (any other OUT).")

    @Argument(help: "A GGUF file, a Lancet archive (.lancet) or a Hugging Face model folder.")
    var model: String

    @Argument(help: "The output: a .gguf file, a .lancet archive, or a folder for the Hugging Face format.")
    var output: String

    @Option(help: ArgumentHelp("Tensor type: for GGUF one of llama-quantize's (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                               + "Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K); F32, F16 or BF16 for safetensors."))
    var outputType = "F32"

    @Flag(help: "Hugging Face folder: write low-rank linears as their two factors (<module>.0.weight, <module>.1.weight; see Docs/Decomposition.md) instead of their product.")
    var keepFactors = false

    @Flag(help: "Replace an existing output.")
    var force = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        if !force, FileManager.default.fileExists(atPath: output) { throw ValidationError("\(output): already exists (use --force to overwrite)") }
    }

    func run() throws {
        quiet.apply()
        let format = ModelOutputFormat(path: output)
        let safetensorsTypes = ["F32": SafetensorsDType.f32, "F16": .f16, "BF16": .bf16]
        let ggufType = format == .gguf ? try CommandSupport.ggufOutputType(outputType) : .f32
        guard format != .archive || outputType.uppercased() == "F32" else {
            throw ValidationError("--output-type must be F32 for a Lancet archive (.lancet), got '\(outputType)'")
        }
        guard format != .huggingFace || safetensorsTypes[outputType.uppercased()] != nil else {
            throw ValidationError("--output-type must be F32, F16 or BF16 for a Hugging Face folder, got '\(outputType)'")
        }
        let m = try ModelLoader.load(model)
        guard !keepFactors || format == .huggingFace else {
            throw ValidationError("--keep-factors applies to a Hugging Face folder (a .lancet archive always keeps factors; GGUF multiplies them back)")
        }
        let kept = try m.save(to: output, ggufType: ggufType, safetensorsType: safetensorsTypes[outputType.uppercased()] ?? .f32, source: model,
                              overwrite: force, keepFactors: keepFactors)
        Console.log("wrote \(output) (\(m.blocks.count) blocks, \(m.parameterCount) parameters" + (kept.map { "; \($0.summary)" } ?? "") + ")")
    }
}
