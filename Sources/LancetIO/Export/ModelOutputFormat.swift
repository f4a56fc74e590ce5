/// What a save path asks for, by its name: `.gguf` a GGUF file for llama.cpp (low-rank linears multiplied back),
/// `.lancet` Lancet's archive (the IR as it is: masks, low-rank factors, heterogeneous graphs, the tokenizer) in a GGUF
/// container and `.safetensors` the same archive in a safetensors file, anything else a Hugging Face folder.
public enum ModelOutputFormat: Sendable, Equatable {
    /// A GGUF file (`GGUFExporter`).
    case gguf
    /// A Lancet archive (`ModelArchive`), GGUF or safetensors container.
    case archive
    /// A Hugging Face folder (`HuggingFaceExporter`).
    case huggingFace

    /// The format a path names (the extension, in any case).
    public init(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".gguf") { self = .gguf } else if lower.hasSuffix(".lancet") || ModelArchive.isSafetensorsPath(lower) { self = .archive } else { self = .huggingFace }
    }

    /// Whether the output is one file (GGUF or archive), not a folder.
    public var isFile: Bool { self != .huggingFace }
}
