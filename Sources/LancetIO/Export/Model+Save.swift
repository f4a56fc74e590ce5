import LancetIR

extension Model {
    /// Saves the model: a path ending in `.gguf` (any case) is written by `GGUFExporter` with matrices as
    /// `ggufType`, any other path is a Hugging Face folder written by `HuggingFaceExporter` with tensors as
    /// `safetensorsType`. `extraMetadata` goes into the GGUF metadata as strings, or into the safetensors
    /// `__metadata__`. With `overwrite: false` existing output is an error.
    ///
    /// ```swift
    /// try model.save(to: "out/pruned.gguf", extraMetadata: ["lancet.recipe": recipeText])
    /// try model.save(to: "out/pruned-hf")
    /// ```
    public func save(to path: String, ggufType: GGMLType = .f32, safetensorsType: SafetensorsDType = .f32,
                     extraMetadata: [String: String] = [:], overwrite: Bool = false) throws {
        if path.lowercased().hasSuffix(".gguf") {
            let extra = extraMetadata.keys.sorted().map { ($0, GGUFValue.string(extraMetadata[$0]!)) }
            try GGUFExporter.write(self, to: path, type: ggufType, extraMetadata: extra, overwrite: overwrite)
        } else {
            try HuggingFaceExporter.write(self, to: path, dtype: safetensorsType, extraMetadata: extraMetadata, overwrite: overwrite)
        }
    }
}
