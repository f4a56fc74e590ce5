/// What a GGUF export stores its weight matrices as: llama.cpp's file types (`llama-quantize`'s names and
/// `general.file_type` codes). F32 is exact and the default; F16 and BF16 round each weight once; the
/// quantised types choose a type per tensor exactly as `llama-quantize` does without an importance matrix
/// (`GGUFTensorTypeRules`): a "mostly Q4_0" file keeps 1-D tensors in F32 and stores the output head (or the
/// tied token embedding) as Q6_K, Q4_K_M gives some `attn_v` and `ffn_down` tensors Q6_K, and a matrix whose
/// rows do not fit the chosen type's blocks falls back to a type whose blocks fit.
///
/// ```swift
/// let type = try GGUFFileType(parsing: "q4_k_m")      // .q4_K_M; "Q4_K" is llama-quantize's alias for it
/// try GGUFExporter.write(model, to: "out/pruned-q4km.gguf", type: type)
/// ```
public enum GGUFFileType: String, CaseIterable, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", q8_0 = "Q8_0"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"

    /// `llama-quantize`'s shorthands: `Q4_K` means Q4_K_M and `Q5_K` means Q5_K_M.
    public static let aliases: [String: GGUFFileType] = ["Q4_K": .q4_K_M, "Q5_K": .q5_K_M]

    /// The name as llama.cpp prints it (`Q4_K_M`).
    public var name: String { rawValue }

    /// A file type from its name, any case, aliases included; nil for an unknown name.
    public init?(name: String) {
        let key = name.uppercased()
        guard let type = GGUFFileType(rawValue: key) ?? Self.aliases[key] else { return nil }
        self = type
    }

    /// A file type from its name, or an error listing the accepted names.
    public init(parsing name: String) throws {
        guard let type = GGUFFileType(name: name) else { throw UnknownName(name: name) }
        self = type
    }

    /// The file type whose matrices are all `type` (F32, F16, BF16, Q8_0 or a legacy type); nil otherwise.
    public init?(uniform type: GGMLType) {
        guard let match = Self.allCases.first(where: { $0.baseType == type && !$0.isMixture }) else { return nil }
        self = match
    }

    /// A name that is not a file type Lancet writes.
    public struct UnknownName: Error, CustomStringConvertible {
        /// The name given.
        public let name: String
        public var description: String {
            "'\(name)' is not a GGUF output type; use one of \(GGUFFileType.allCases.map(\.name).joined(separator: ", "))"
                + " (Q4_K and Q5_K mean Q4_K_M and Q5_K_M, as in llama-quantize)"
        }
    }

    /// llama.cpp's `LLAMA_FTYPE_*` code, written as `general.file_type`.
    public var code: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q4_K_S: 14
        case .q4_K_M: 15
        case .q5_K_S: 16
        case .q5_K_M: 17
        case .q6_K: 18
        case .bf16: 32
        }
    }

    /// The tensor type most matrices get (`llama-quantize`'s default type for the file type).
    public var baseType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q4_K_S, .q4_K_M: .q4_K
        case .q5_K_S, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        }
    }

    /// True for the block-quantised file types (everything but F32, F16 and BF16).
    public var isQuantized: Bool { baseType.blockSize > 1 }

    /// True for the K-quant mixtures whose per-tensor choices go beyond the output head (`_S` and `_M`).
    public var isMixture: Bool { [.q4_K_S, .q4_K_M, .q5_K_S, .q5_K_M].contains(self) }
}
