extension ModelFileSummary {
    /// The name of a GGUF `general.file_type` code (llama.cpp's `llama_ftype`), as `llama-quantize` names the
    /// types: "F32" for all-F32, "Q4_K_M" for mostly Q4_K, medium mixture; "code N" for a code it does not define.
    /// The types Lancet writes are named by `GGUFFileType`; the others Lancet only reads.
    public static func fileTypeName(code: Int) -> String {
        if let written = GGUFFileType.allCases.first(where: { Int($0.code) == code }) { return written.name }
        let readOnly: [Int: String] = [
            10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
            23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS",
            31: "IQ1_M", 36: "TQ1_0", 37: "TQ2_0",
        ]
        return readOnly[code] ?? "code \(code)"
    }
}
