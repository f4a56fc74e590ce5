import Foundation
import LancetIR
import LancetTensor

/// Writes a `Model` as a GGUF file that llama.cpp loads, atomically.
///
/// **Architecture.** `llama` when every block has both sub-layers with the same heads, KV heads and FFN
/// width (mixture-of-experts blocks: Mixtral-style `ffn_gate_inp`/`ffn_{gate,up,down}_exps` tensors and
/// `llama.expert_count`/`expert_used_count`, every block a MoE of the same shape). Otherwise `deci`, whose
/// loader reads `attention.head_count`, `attention.head_count_kv` and `feed_forward_length` as per-block
/// arrays; fewer blocks are simply a smaller `block_count`. llama.cpp's `deci` graph (at Lancet's pinned
/// commit) always builds the FFN and reads the head size from block 0, so two sub-layers that a block lacks
/// are written as exact no-ops and listed in Lancet metadata, which `GGUFLlamaImporter` reads back:
/// - a block without an MLP gets a zero FFN of width 1 (`ffn_down` all zeros adds nothing to the residual);
///   listed in `lancet.ffn_free_blocks`;
/// - block 0 without attention gets deci's "linear attention" (`head_count_kv` 0) with a zero
///   `attn_output`; listed in `lancet.attention_free_blocks`. Later blocks without attention have
///   `head_count` 0, which llama.cpp skips.
///
/// **Weights.** Masked weights are written as they are (pruned entries are zeros). Low-rank linears are
/// multiplied out to dense `[out, in]` weights. When the model's RoPE pairing is `halves` (imported from
/// Hugging Face), q/k rows and biases are permuted to llama.cpp's `adjacent` pairing. Storage: `type` is a
/// `GGUFFileType` (F32 by default, exact); each matrix gets the ggml type `llama-quantize` would give it for
/// that file type (`GGUFTensorTypeRules`), encoded bit-exactly as ggml's reference quantisers do
/// (`GGMLQuantizer`); 1-D tensors and the MoE router stay F32.
///
/// **Metadata.** `general.*`, the architecture's sizes, RoPE (`rope_freqs.weight` for frequency factors
/// and Llama 3 scaling, `rope.scaling.*` for linear), the full `tokenizer.ggml.*` set when the model's
/// tokenizer is a `Tokenizer`, `tokenizer.chat_template`, `lancet.provenance` (the model's provenance
/// records, an array of JSON strings), then `extraMetadata` in the order given.
///
/// ```swift
/// try GGUFExporter.write(model, to: "out/pruned.gguf", type: .q4_K_M,
///                        extraMetadata: [("lancet.recipe", .string(recipeText))])
/// ```
public enum GGUFExporter {
    /// Writes `model` to `path` with matrices stored as the file type `type`. With `overwrite: false` an
    /// existing file is an error (`FileWriteError`). Throws `ModelExportError` naming the block and reason
    /// when the model cannot be expressed (e.g. a MoE with a shared expert), `VerifierError` when the model
    /// does not verify, `GGUFError` naming the tensor when a quantised type meets a NaN or infinity.
    /// `source` (the GGUF file the model was loaded from) lets quantised matrices the model left unchanged
    /// keep their stored bytes instead of being quantised again (see `GGUFExportPlan.addTensors`).
    /// Returns, for a quantised `type`, how many of the model's exactly-zero matrix weights stay exactly zero
    /// in the file (nil for F32, F16 and BF16, which keep every zero).
    @discardableResult
    public static func write(_ model: Model, to path: String, type: GGUFFileType = .f32, source: GGUFFile? = nil,
                             extraMetadata: [(String, GGUFValue)] = [], overwrite: Bool = false) throws -> ZeroRetention? {
        try AtomicFile.checkWritable(path, overwrite: overwrite)
        try Verifier.verify(model)
        let plan = try GGUFExportPlan(model, path: path)

        var metadata = plan.metadata(type: type) + tokenizerMetadata(of: model)
        metadata.append(("lancet.provenance", .array(.string, model.provenance.map { .string($0) })))
        if !plan.attentionFree.isEmpty {
            metadata.append(("lancet.attention_free_blocks", .array(.int32, plan.attentionFree.map { .int32(Int32($0)) })))
        }
        if !plan.ffnFree.isEmpty {
            metadata.append(("lancet.ffn_free_blocks", .array(.int32, plan.ffnFree.map { .int32(Int32($0)) })))
        }
        let ours = Set(metadata.map(\.0))
        for (key, _) in extraMetadata where ours.contains(key) {
            throw ModelExportError(path, "extra metadata key '\(key)' is one the exporter writes itself")
        }
        metadata += extraMetadata

        var writer = GGUFWriter(metadata: metadata)
        try plan.addTensors(to: &writer, type: type, source: source)
        try writer.write(to: path, overwrite: overwrite)
        return type.isQuantized ? try plan.zeroRetention(in: GGUFFile(path: path)) : nil
    }

    /// The model's tokenizer as GGUF metadata: the full `tokenizer.ggml.*` set when it is a `Tokenizer`, and the chat
    /// template (the tokenizer's, or the one carried in the model's annotations). Also what `ModelArchive` stores.
    static func tokenizerMetadata(of model: Model) -> [(String, GGUFValue)] {
        var metadata = (model.tokenizer as? Tokenizer)?.ggufMetadata ?? []
        if let template = model.tokenizer?.chatTemplateText ?? model.annotations["tokenizer.chat_template"] {
            metadata.append(("tokenizer.chat_template", .string(template)))
        }
        return metadata
    }

    /// Pruned weights through quantisation: a symmetric format (Q8_0, Q4_0, Q5_0, Q6_K) keeps every exact zero;
    /// one with a per-block minimum (Q4_1, Q5_1, Q4_K, Q5_K) only where the block's grid passes through zero.
    public struct ZeroRetention: Sendable, Codable, Equatable {
        /// Matrix weights of the model that are exactly zero.
        public var zeroWeights: Int
        /// Of those, the ones the file decodes to exactly zero.
        public var keptZero: Int

        /// A one-line account, e.g. "46309718 of 53375805 zero weights stay exactly zero (86.8%)".
        public var summary: String {
            zeroWeights == 0 ? "no zero weights to keep"
                : "\(keptZero) of \(zeroWeights) zero weights stay exactly zero (" + String(format: "%.1f%%", 100 * Double(keptZero) / Double(zeroWeights)) + ")"
        }
    }
}
