/// Which ggml type each weight matrix of a GGUF export gets, as `llama-quantize` decides it without an
/// importance matrix (llama.cpp's `llama_tensor_get_type`, for the file types Lancet writes and the tensors
/// of the `llama` and `deci` layouts):
/// - F32, F16, BF16: every matrix the file type's type.
/// - The output head, or the token embedding when it is tied to the head: Q6_K in every quantised file type
///   except Q8_0 (which keeps Q8_0); Q8_0 when its rows are not a multiple of the base type's block.
/// - Q4_K_M and Q5_K_M: `attn_v` and `ffn_down` get Q6_K in the first and last eighth of their layers and
///   every third layer between (`useMoreBits`); Q4_K_S: Q5_K for the first four `attn_v` and the first eighth
///   of `ffn_down`. With 8 experts `attn_v` and `attn_k` get Q8_0.
/// - A matrix whose rows are not a multiple of the chosen type's block falls back: Q4_K → Q5_0, Q5_K → Q5_1,
///   Q6_K → Q8_0, and to F16 when even that does not fit. (`llama-quantize` refuses the F16 case for the
///   legacy types; Lancet writes F16 rather than fail an export.)
///
/// `type(for:rowLength:)` must see the matrices in block order, as llama-quantize counts `attn_v` and
/// `ffn_down` tensors as it meets them.
struct GGUFTensorTypeRules {
    let fileType: GGUFFileType
    /// True when the file has a separate `output.weight` (else the token embedding is the head).
    let hasOutputHead: Bool
    /// The number of `attn_v` tensors in the file (blocks with attention).
    let attentionValueCount: Int
    /// `block_count`: the layer count `ffn_down` positions are measured against.
    let blockCount: Int
    /// Experts per mixture-of-experts block (1 for dense models).
    let expertCount: Int
    private var attentionValueSeen = 0
    private var ffnDownSeen = 0

    init(fileType: GGUFFileType, hasOutputHead: Bool, attentionValueCount: Int, blockCount: Int, expertCount: Int) {
        (self.fileType, self.hasOutputHead) = (fileType, hasOutputHead)
        (self.attentionValueCount, self.blockCount, self.expertCount) = (attentionValueCount, blockCount, expertCount)
    }

    /// llama-quantize's "use more bits" layers: the first and last eighth, and every third layer between.
    static func useMoreBits(_ layer: Int, of layers: Int) -> Bool {
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    /// The type of the matrix `name` (llama.cpp's tensor name) with rows of `rowLength` elements.
    mutating func type(for name: String, rowLength: Int) -> GGMLType {
        let base = fileType.baseType
        guard fileType.isQuantized else { return base }
        var type = base
        if name == "output.weight" || (!hasOutputHead && name == "token_embd.weight") {
            if rowLength % base.blockSize != 0 { type = .q8_0 } else if base != .q8_0 { type = .q6_K }
        } else if name.hasSuffix("attn_v.weight") {
            if [.q4_K_M, .q5_K_M].contains(fileType) && Self.useMoreBits(attentionValueSeen, of: attentionValueCount) {
                type = .q6_K
            } else if fileType == .q4_K_S && attentionValueSeen < 4 {
                type = .q5_K
            }
            if expertCount == 8 { type = .q8_0 }
            attentionValueSeen += 1
        } else if name.hasSuffix("attn_k.weight") {
            if expertCount == 8 { type = .q8_0 }
        } else if name.contains("ffn_down") {
            let layer = ffnDownSeen
            if [.q4_K_M, .q5_K_M].contains(fileType) && Self.useMoreBits(layer, of: blockCount) {
                type = .q6_K
            } else if fileType == .q4_K_S && layer < blockCount / 8 {
                type = .q5_K
            }
            ffnDownSeen += 1
        }
        return Self.fitting(type, rowLength: rowLength)
    }

    /// `type`, or its fallback when rows of `rowLength` are not a whole number of its blocks.
    static func fitting(_ type: GGMLType, rowLength: Int) -> GGMLType {
        guard rowLength % type.blockSize != 0 else { return type }
        let fallback: GGMLType = switch type {
        case .q4_K: .q5_0
        case .q5_K: .q5_1
        case .q6_K: .q8_0
        default: .f16
        }
        return rowLength % fallback.blockSize == 0 ? fallback : .f16
    }
}
