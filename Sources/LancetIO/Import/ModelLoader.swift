import Foundation
import LancetIR

/// Opens model files of any supported format: a GGUF file, Lancet's archive (`ModelArchive`, in a GGUF or a
/// safetensors container), or a Hugging Face folder (`config.json`, safetensors, `tokenizer.json`).
public enum ModelLoader {
    /// The format of a path.
    public enum Format {
        /// A GGUF file (a model for llama.cpp or a `.lancet` archive).
        case gguf
        /// A Hugging Face folder.
        case huggingFace
        /// A single `.safetensors` file: Lancet's archive in a safetensors container.
        case safetensorsArchive
    }

    /// Which format `path` holds; throws when it is neither a file nor a folder with `config.json`. A file named
    /// `*.safetensors` is a safetensors archive, any other file GGUF.
    public static func format(of path: String) throws -> Format {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelImportError(path, "no such file or folder")
        }
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: path + "/config.json") else {
                throw ModelImportError(path, "a model folder needs a config.json (Hugging Face layout)")
            }
            return .huggingFace
        }
        return ModelArchive.isSafetensorsPath(path) ? .safetensorsArchive : .gguf
    }

    /// A loaded model and what the load found but let pass.
    public struct LoadResult {
        /// The model, verified.
        public var model: Model
        /// Weight tensors holding NaN or ±infinity (empty unless the options said `.report`).
        public var nonFiniteTensors: [NonFiniteTensor]
    }

    /// The model at `path` in Lancet's IR, verified, with its tokenizer attached when the file has one.
    /// Non-finite weights are refused, unless `LANCET_ALLOW_NONFINITE=1` is set: then each is named in a
    /// warning on standard error and the model loads.
    public static func load(_ path: String) throws -> Model {
        let result = try load(path, options: .fromEnvironment)
        for finding in result.nonFiniteTensors {
            FileHandle.standardError.write(Data("warning: \(path): \(finding) (loaded because \(LoadOptions.allowNonFiniteVariable)=1)\n".utf8))
        }
        return result.model
    }

    /// The model at `path`, loaded with `options`; the result lists what `options` let pass.
    public static func load(_ path: String, options: LoadOptions) throws -> LoadResult {
        let weights = NonFiniteWeightCheck(policy: options.nonFiniteWeights)
        switch try format(of: path) {
        case .gguf:
            let file = try GGUFFile(path: path)
            if ModelArchive.isArchive(file) { return LoadResult(model: try ModelArchive.read(path, weights: weights).model, nonFiniteTensors: weights.findings) }
            var model = try GGUFLlamaImporter.load(file, weights: weights)
            if file.metadata["tokenizer.ggml.model"] != nil {
                model.tokenizer = try Tokenizer(gguf: file)
                do { try Verifier.verify(model) } catch let e as VerifierError { throw ModelImportError(path, "\(e)") }
            }
            return LoadResult(model: model, nonFiniteTensors: weights.findings)
        case .huggingFace:
            return LoadResult(model: try HuggingFaceLlamaImporter.load(folder: path, weights: weights), nonFiniteTensors: weights.findings)
        case .safetensorsArchive:
            return LoadResult(model: try ModelArchive.readSafetensors(path, weights: weights), nonFiniteTensors: weights.findings)
        }
    }

    /// The tokenizer of the model at `path`.
    public static func tokenizer(_ path: String) throws -> Tokenizer {
        switch try format(of: path) {
        case .gguf: return try Tokenizer(gguf: try GGUFFile(path: path))
        case .huggingFace: return try Tokenizer(huggingFaceFolder: URL(fileURLWithPath: path))
        case .safetensorsArchive:
            guard let tokenizer = try ModelArchive.openSafetensors(path).tokenizer() else { throw ModelImportError(path, "the archive keeps no tokenizer (metadata '\(ModelArchive.tokenizerKey)')") }
            return tokenizer
        }
    }

    /// A summary of the file at `path` without loading weights (a Lancet archive excepted: its IR is read back).
    public static func summary(_ path: String) throws -> ModelFileSummary {
        switch try format(of: path) {
        case .gguf:
            let file = try GGUFFile(path: path)
            return ModelArchive.isArchive(file) ? try ModelFileSummary(archive: file) : ModelFileSummary(gguf: file)
        case .huggingFace: return try ModelFileSummary(huggingFaceFolder: path)
        case .safetensorsArchive: return try ModelFileSummary(safetensorsArchive: path)
        }
    }
}

extension Model {
    /// The model at `path` (GGUF file, Lancet archive or Hugging Face folder), with its tokenizer, verified.
    public static func load(_ path: String) throws -> Model { try ModelLoader.load(path) }
}
