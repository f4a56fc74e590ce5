import LancetIR

extension Model {
    /// Saves the model: a path ending in `.gguf` (any case) is written by `GGUFExporter` as the file type
    /// `ggufType` (F32 by default; F16, BF16, Q8_0, Q4_0 … Q6_K and the K-quant mixtures as llama-quantize
    /// makes them), a path ending in `.lancet` is Lancet's archive (`ModelArchive`: F32, factors and masks kept, for
    /// Lancet's own runtime), any other path is a Hugging Face folder written by `HuggingFaceExporter` with tensors as
    /// `safetensorsType`. `extraMetadata` goes into the GGUF metadata as strings, or into the safetensors
    /// `__metadata__`. With `overwrite: false` existing output is an error. `source` names the GGUF file the
    /// model was loaded from, if any: quantised matrices the model left unchanged keep their stored bytes.
    /// `keepFactors` writes a Hugging Face folder's low-rank linears as their two factors (`HuggingFaceExporter`).
    /// Returns what `GGUFExporter.write` returns for a GGUF path (zero weights kept by a quantised type), else nil.
    ///
    /// ```swift
    /// try model.save(to: "out/pruned.gguf", extraMetadata: ["lancet.recipe": recipeText])
    /// try model.save(to: "out/pruned-hf")
    /// ```
    @discardableResult
    public func save(to path: String, ggufType: GGUFFileType = .f32, safetensorsType: SafetensorsDType = .f32,
                     source: String? = nil, extraMetadata: [String: String] = [:], overwrite: Bool = false,
                     keepFactors: Bool = false) throws -> GGUFExporter.ZeroRetention? {
        let extra = extraMetadata.keys.sorted().map { ($0, GGUFValue.string(extraMetadata[$0]!)) }
        switch ModelOutputFormat(path: path) {
        case .archive:
            guard ggufType == .f32 else { throw ModelExportError(path, "a Lancet archive holds F32 tensors only, not \(ggufType)") }
            try ModelArchive.write(self, to: path, extra: extra, overwrite: overwrite)
            return nil
        case .gguf:
            let file = try source.flatMap { $0.lowercased().hasSuffix(".gguf") && ggufType.isQuantized ? try GGUFFile(path: $0) : nil }
            return try GGUFExporter.write(self, to: path, type: ggufType, source: file, extraMetadata: extra, overwrite: overwrite)
        case .huggingFace:
            break
        }
        try HuggingFaceExporter.write(self, to: path, dtype: safetensorsType, extraMetadata: extraMetadata, overwrite: overwrite,
                                      keepFactors: keepFactors)
        return nil
    }
}
