import Foundation
import Lancet

/// The valid inputs every case starts from: a tiny seeded Llama model with a byte-level BPE tokenizer,
/// exported by Lancet itself as GGUF (F32 and Q8_0), as a Hugging Face folder and (with a mask on one weight) as a
/// safetensors archive, a short text to evaluate, and a recipe that validates against the model.
public struct FuzzFixtures: Sendable {
    /// The F32 GGUF file.
    public let ggufF32: [UInt8]
    /// The Q8_0 GGUF file (quantised matrices, F32 norms).
    public let ggufQ8: [UInt8]
    /// The Hugging Face folder: file name → bytes (`config.json`, `model.safetensors`, `tokenizer.json`, …).
    public let huggingFace: [String: [UInt8]]
    /// The Lancet archive in a safetensors file (`ModelArchive`), block 0's `mlp.up.weight` masked.
    public let archive: [UInt8]
    /// Plain text for `lancet eval` and for calibration.
    public let text: [UInt8]
    /// A recipe that validates against `model.gguf` with `text.txt` as its data.
    public let recipe: String

    /// The tiny model's sizes: every matrix row is a multiple of 32 long, so Q8_0 applies to all of them.
    public static var sizes: TinyLlama.Sizes {
        var s = TinyLlama.Sizes()
        s.hidden = 64
        s.blocks = 2
        s.heads = 4
        s.kvHeads = 2
        s.ffn = 128
        s.vocabulary = tokenizerSpec().tokens.count
        return s
    }

    /// A byte-level BPE vocabulary: the 256 byte tokens, a few English merges and three control tokens.
    public static func tokenizerSpec() -> TokenizerSpec {
        let bytes = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) }
        let merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n"), ("Ġ", "a")]
        let merged = merges.map { $0.0 + $0.1 }
        let control = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        let tokens = bytes + merged + control
        return TokenizerSpec(
            source: "fuzz-fixture", kind: .byteLevelBPE, tokens: tokens,
            tokenTypes: Array(repeating: .normal, count: bytes.count + merged.count) + Array(repeating: .control, count: control.count),
            merges: merges.map { MergeRule($0.0, $0.1) }, preTokenizer: "smollm",
            bos: Int32(tokens.count - 2), eos: Int32(tokens.count - 1), addBOS: false)
    }

    /// Builds the fixtures in a scratch folder under `scratch` (removed afterwards).
    public static func make(scratch: String) throws -> FuzzFixtures {
        var model = TinyLlama.make(sizes, seed: 23)
        model.tokenizer = try Tokenizer(spec: tokenizerSpec())
        let folder = scratch + "/fixtures-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try GGUFExporter.write(model, to: folder + "/f32.gguf", type: .f32)
        try GGUFExporter.write(model, to: folder + "/q8.gguf", type: .q8_0)
        try HuggingFaceExporter.write(model, to: folder + "/hf")
        func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        var hf: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder + "/hf") { hf[name] = try read(folder + "/hf/" + name) }
        var masked = model
        let up = masked.blocks[0].parameters["mlp.up.weight"]!
        let keep = (0..<up.count).map { UInt8($0 % 4 == 0 ? 0 : 1) }
        masked.blocks[0].parameters["mlp.up.weight"] = Tensor(shape: up.shape, zip(up.scalars, keep).map { $1 == 0 ? 0 : $0 })
        masked.blocks[0].masks["mlp.up.weight"] = Mask(shape: up.shape, keep: keep)
        try ModelArchive.write(masked, to: folder + "/archive.safetensors")
        let text = String(repeating: "The cat sat on the mat, and then the rain came in. ", count: 24)
        return FuzzFixtures(ggufF32: try read(folder + "/f32.gguf"), ggufQ8: try read(folder + "/q8.gguf"), huggingFace: hf,
                            archive: try read(folder + "/archive.safetensors"), text: Array(text.utf8), recipe: baseRecipe)
    }

    /// The recipe every recipe case mutates: each section a pass, a fit and an evaluation would have.
    public static let baseRecipe = """
        # A recipe for the fuzz suite's tiny model.
        lancet: 1
        model: model.gguf
        calibration: {data: text.txt, samples: 2, context: 64, seed: 0}
        stages:
          - name: prune
            passes:
              - wanda: {sparsity: 0.5}
                targets: ["blocks.*.mlp.*"]
                fit: {method: lstsq, damping: 0.01}
              - magnitude:
                  sparsity: 0.25
                targets: ["blocks.*.attn.*"]
        evaluate: {data: eval.txt, context: 64, max_windows: 2}
        output: out/pruned.gguf

        """

    /// A case whose input is the Hugging Face folder `model/` with the file `name` replaced by `bytes`, loaded
    /// by `loadCommands`, and must refuse when any applied mutation says so.
    func huggingFaceCase(_ kind: FuzzKind, index: Int, applied: [Applied], replacing name: String, with bytes: [UInt8]) -> FuzzCase {
        var files = huggingFace.mapKeys { "model/" + $0 }
        files["model/" + name] = bytes
        files["text.txt"] = text
        return FuzzCase(kind: kind, index: index, mutations: applied.map(\.name), expectation: FuzzExpectation(applied), files: files,
                        commands: Self.loadCommands("model"))
    }

    /// The `lancet` commands that load a model at `path` the way users do: a summary and a short evaluation.
    static func loadCommands(_ path: String) -> [[String]] {
        [["inspect", path], ["eval", path, "--data", "text.txt", "--context", "32", "--max-windows", "1"]]
    }
}
