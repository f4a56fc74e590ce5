import Foundation
import LancetIR
import LancetTensor

/// What `GGUFExporter` writes for one model: the architecture, per-block sizes, the no-op placeholders
/// llama.cpp's `deci` loader needs, the metadata and the tensors in llama.cpp's names.
struct GGUFExportPlan {
    let model: Model
    let path: String
    let blocks: [ExportBlock]
    /// `llama` or `deci`.
    let architecture: String
    /// The head size shared by every attention block.
    let headDimensions: Int
    /// Per block, as written: query heads, KV heads and FFN width (placeholders included).
    let heads: [Int], kvHeads: [Int], ffnWidths: [Int]
    /// Experts per block and experts per token, for a mixture-of-experts model.
    let experts: (count: Int, used: Int)?
    /// Blocks whose missing attention is written as a zero "linear attention" (only block 0 needs it).
    let attentionFree: [Int]
    /// Blocks whose missing MLP is written as a zero FFN of width 1.
    let ffnFree: [Int]

    init(_ model: Model, path: String) throws {
        self.model = model
        self.path = path
        func fail(_ block: Int? = nil, _ reason: String) -> ModelExportError { ModelExportError(path, block: block, reason) }
        guard !model.blocks.isEmpty else { throw fail(nil, "the model has no blocks; llama.cpp needs at least one") }
        blocks = try model.blocks.enumerated().map { try ExportBlock.read($1, index: $0, model: model, path: path) }

        let withAttention = blocks.enumerated().compactMap { i, b in b.attention.map { (i, $0) } }
        guard let first = withAttention.first?.1 else { throw fail(nil, "no block has attention; llama.cpp reads the head size from an attention block") }
        headDimensions = first.headDimensions
        if let (i, a) = withAttention.first(where: { $0.1.headDimensions != first.headDimensions }) {
            throw fail(i, "head size \(a.headDimensions) differs from the first attention block's \(first.headDimensions); GGUF has one key_length")
        }
        let rope = model.config.rope
        guard rope.rotaryDimensions == headDimensions else {
            throw fail(nil, "RoPE rotates \(rope.rotaryDimensions) of \(headDimensions) head dimensions; llama.cpp's llama and deci need all of them")
        }
        if let (i, a) = withAttention.first(where: { ($0.1.window ?? .max) < model.config.contextLength }) {
            throw fail(i, "sliding window of \(a.window!) tokens (context \(model.config.contextLength)); llama.cpp's llama architecture has no sliding window")
        }

        let moeBlocks = blocks.enumerated().compactMap { i, b -> (Int, ExportBlock.MoE)? in
            if case let .moe(m)? = b.ffn { return (i, m) }
            return nil
        }
        if let (_, m0) = moeBlocks.first {
            // llama.cpp builds every block of a llama MoE the same way: attention, then n_expert experts.
            for (i, b) in blocks.enumerated() {
                guard case let .moe(m)? = b.ffn else {
                    throw fail(i, "has a dense MLP or none while other blocks are mixtures of experts; llama.cpp's llama architecture needs every block to be one")
                }
                guard let a = b.attention, a.heads == first.heads, a.kvHeads == first.kvHeads else {
                    throw fail(i, "attention differs from block 0's; a mixture-of-experts GGUF needs uniform attention")
                }
                guard m.gate.count == m0.gate.count, m.topK == m0.topK, m.width == m0.width else {
                    throw fail(i, "\(m.gate.count) experts (top \(m.topK), width \(m.width)) differ from block \(moeBlocks[0].0)'s \(m0.gate.count) (top \(m0.topK), width \(m0.width))")
                }
            }
            experts = (m0.gate.count, m0.topK)
        } else {
            experts = nil
        }

        var heads: [Int] = [], kvHeads: [Int] = [], widths: [Int] = []
        var attentionFree: [Int] = [], ffnFree: [Int] = []
        let maxHeads = withAttention.map(\.1.heads).max()!
        for (i, b) in blocks.enumerated() {
            if let a = b.attention {
                heads.append(a.heads); kvHeads.append(a.kvHeads)
            } else if i == 0 {
                heads.append(maxHeads); kvHeads.append(0); attentionFree.append(i)
            } else {
                heads.append(0); kvHeads.append(0)
            }
            switch b.ffn {
            case let .dense(m)?: widths.append(m.width)
            case let .moe(m)?: widths.append(m.width)
            case nil: widths.append(1); ffnFree.append(i)
            }
        }
        let uniform = attentionFree.isEmpty && ffnFree.isEmpty && heads.allSatisfy { $0 == heads[0] && $0 > 0 }
            && Set(kvHeads).count == 1 && Set(widths).count == 1
        architecture = uniform ? "llama" : "deci"
        (self.heads, self.kvHeads, self.ffnWidths) = (heads, kvHeads, widths)
        (self.attentionFree, self.ffnFree) = (attentionFree, ffnFree)
    }

    /// `general.*` and the architecture's sizes, RoPE and norm settings.
    func metadata(type: GGUFFileType) -> [(String, GGUFValue)] {
        let a = architecture, c = model.config
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)),
            ("general.name", .string(model.annotations["general.name"] ?? c.name)),
        ]
        for key in ["general.basename", "general.license"] {
            if let v = model.annotations[key] { m.append((key, .string(v))) }
        }
        m.append(("general.file_type", .uint32(type.code)))
        if type.isQuantized { m.append(("general.quantization_version", .uint32(2))) }
        func perBlock(_ values: [Int]) -> GGUFValue {
            architecture == "llama" ? .uint32(UInt32(values[0])) : .array(.int32, values.map { .int32(Int32($0)) })
        }
        m += [
            ("\(a).block_count", .uint32(UInt32(blocks.count))),
            ("\(a).context_length", .uint32(UInt32(c.contextLength))),
            ("\(a).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(a).feed_forward_length", perBlock(ffnWidths)),
            ("\(a).attention.head_count", perBlock(heads)),
            ("\(a).attention.head_count_kv", perBlock(kvHeads)),
            ("\(a).attention.key_length", .uint32(UInt32(headDimensions))),
            ("\(a).attention.value_length", .uint32(UInt32(headDimensions))),
            ("\(a).attention.layer_norm_rms_epsilon", .float32(Float(c.normEpsilon))),
            ("\(a).rope.dimension_count", .uint32(UInt32(c.rope.rotaryDimensions))),
            ("\(a).rope.freq_base", .float32(Float(c.rope.theta))),
        ]
        if case let .linear(factor) = c.rope.scaling {
            m += [("\(a).rope.scaling.type", .string("linear")), ("\(a).rope.scaling.factor", .float32(Float(factor)))]
        }
        if let experts {
            m += [("\(a).expert_count", .uint32(UInt32(experts.count))), ("\(a).expert_used_count", .uint32(UInt32(experts.used)))]
        }
        m.append(("\(a).vocab_size", .uint32(UInt32(c.vocabularySize))))
        return m
    }

    /// The per-dimension divisors of the RoPE frequencies, when the scaling is expressed that way in GGUF
    /// (`rope_freqs.weight`): frequency factors as they are, Llama 3 scaling as the ratio of the unscaled
    /// to the scaled frequency (as llama.cpp's converter does).
    var ropeFrequencyFactors: [Float]? {
        let rope = model.config.rope
        switch rope.scaling {
        case let .frequencyFactors(f): return f
        case .llama3:
            var plain = rope
            plain.scaling = .none
            return zip(plain.inverseFrequencies, rope.inverseFrequencies).map { $0 / $1 }
        case .none, .linear: return nil
        }
    }

    /// The rules that pick each matrix's type for `type`, with this model's counts.
    func tensorTypeRules(_ type: GGUFFileType) -> GGUFTensorTypeRules {
        GGUFTensorTypeRules(fileType: type, hasOutputHead: model.outputHead != nil, attentionValueCount: blocks.filter { $0.attention != nil }.count,
                            blockCount: blocks.count, expertCount: experts?.count ?? 1)
    }

    /// Adds every tensor in llama.cpp's names; each matrix (no-op placeholders included, as llama-quantize
    /// treats them) stored as `GGUFTensorTypeRules` picks for `type`, 1-D tensors and the router as F32.
    /// A matrix that `source` holds under the same name, shape and chosen type, and whose stored bytes decode
    /// to exactly the model's values, is copied as stored instead of re-encoded (as llama-quantize keeps a
    /// tensor already in the target type): re-running a K-quant scale search on decoded values can pick
    /// other scales, so this keeps a quantised model's unchanged tensors bit for bit.
    func addTensors(to w: inout GGUFWriter, type: GGUFFileType, source: GGUFFile? = nil) throws {
        var rules = tensorTypeRules(type)
        try forEachTensor { name, t, isMatrix in
            let stored = isMatrix ? rules.type(for: name, rowLength: t.shape.last ?? 1) : .f32
            if let source, let info = source.info(name), info.type == stored, info.shape == t.shape, stored.blockSize > 1,
               Self.decodes(info, of: source, to: t) {
                try w.addRaw(info, of: source, name: name)
            } else {
                try w.add(name: name, tensor: t, as: stored)
            }
        }
    }

    /// The ggml type of every tensor `addTensors` writes for `type`, in file order.
    func storedTypes(_ type: GGUFFileType) throws -> [(name: String, type: GGMLType)] {
        var rules = tensorTypeRules(type)
        var types: [(name: String, type: GGMLType)] = []
        try forEachTensor { name, t, isMatrix in types.append((name, isMatrix ? rules.type(for: name, rowLength: t.shape.last ?? 1) : .f32)) }
        return types
    }

    /// Calls `body` with every tensor in file order: its llama.cpp name, its values (q/k permuted to adjacent
    /// pairing, experts stacked, placeholders made) and whether it is a matrix the file type applies to
    /// (false for 1-D tensors and the MoE router, which stay F32).
    func forEachTensor(_ body: (_ name: String, _ tensor: Tensor, _ isMatrix: Bool) throws -> Void) throws {
        func matrix(_ name: String, _ t: Tensor) throws { try body(name, t, true) }
        func f32(_ name: String, _ t: Tensor) throws { try body(name, t, false) }
        let h = model.config.hiddenSize
        let toAdjacent = model.config.rope.pairing != .adjacent
        func adjacent(_ t: Tensor, heads: Int, headDim: Int) -> Tensor {
            toAdjacent ? RopePairing.permuteRows(t, heads: heads, headDim: headDim, from: model.config.rope.pairing, to: .adjacent) : t
        }
        try matrix("token_embd.weight", model.embedding)
        if let factors = ropeFrequencyFactors { try f32("rope_freqs.weight", Tensor(shape: [factors.count], factors)) }
        for (i, b) in blocks.enumerated() {
            let p = "blk.\(i)."
            if let a = b.attention {
                let d = a.headDimensions
                try f32(p + "attn_norm.weight", a.norm)
                try matrix(p + "attn_q.weight", adjacent(a.q, heads: a.heads, headDim: d))
                try matrix(p + "attn_k.weight", adjacent(a.k, heads: a.kvHeads, headDim: d))
                try matrix(p + "attn_v.weight", a.v)
                try matrix(p + "attn_output.weight", a.o)
                if let qb = a.qBias { try f32(p + "attn_q.bias", adjacent(qb, heads: a.heads, headDim: d)) }
                if let kb = a.kBias { try f32(p + "attn_k.bias", adjacent(kb, heads: a.kvHeads, headDim: d)) }
                if let vb = a.vBias { try f32(p + "attn_v.bias", vb) }
            } else if attentionFree.contains(i) {
                try f32(p + "attn_norm.weight", Tensor(shape: [h], repeating: 1))
                try matrix(p + "attn_output.weight", Tensor(zeros: [h, h]))
            }
            switch b.ffn {
            case let .dense(m)?:
                try f32(p + "ffn_norm.weight", m.norm)
                try matrix(p + "ffn_gate.weight", m.gate)
                try matrix(p + "ffn_up.weight", m.up)
                try matrix(p + "ffn_down.weight", m.down)
            case let .moe(m)?:
                try f32(p + "ffn_norm.weight", m.norm)
                try f32(p + "ffn_gate_inp.weight", m.router)
                try matrix(p + "ffn_gate_exps.weight", Self.stack(m.gate))
                try matrix(p + "ffn_up_exps.weight", Self.stack(m.up))
                try matrix(p + "ffn_down_exps.weight", Self.stack(m.down))
            case nil:
                try f32(p + "ffn_norm.weight", Tensor(shape: [h], repeating: 1))
                try matrix(p + "ffn_gate.weight", Tensor(zeros: [1, h]))
                try matrix(p + "ffn_up.weight", Tensor(zeros: [1, h]))
                try matrix(p + "ffn_down.weight", Tensor(zeros: [h, 1]))
            }
        }
        try f32("output_norm.weight", model.finalNorm)
        if let head = model.outputHead { try matrix("output.weight", head) }
    }

    /// How many of the model's exactly-zero matrix weights (pruned weights) `file` — this plan written in a
    /// quantised type — still decodes to exactly zero, position by position.
    func zeroRetention(in file: GGUFFile) throws -> GGUFExporter.ZeroRetention {
        var retention = GGUFExporter.ZeroRetention(zeroWeights: 0, keptZero: 0)
        try forEachTensor { name, t, isMatrix in
            guard isMatrix, let info = file.info(name), t.withUnsafeBufferPointer({ $0.contains(0) }) else { return }
            let stored = try file.tensor(info)
            t.withUnsafeBufferPointer { model in
                stored.withUnsafeBufferPointer { decoded in
                    for i in model.indices where model[i] == 0 {
                        retention.zeroWeights += 1
                        if decoded[i] == 0 { retention.keptZero += 1 }
                    }
                }
            }
        }
        return retention
    }

    /// True when tensor `info` of `file` decodes to exactly `t`'s values (bit for bit).
    static func decodes(_ info: GGUFTensorInfo, of file: GGUFFile, to t: Tensor) -> Bool {
        guard let decoded = try? file.tensor(info) else { return false }
        return decoded.withUnsafeBufferPointer { a in
            t.withUnsafeBufferPointer { b in a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, 4 * a.count) == 0 }
        }
    }

    /// Equal-shape matrices stacked along a new leading axis: `E × [r, c]` → `[E, r, c]`.
    static func stack(_ matrices: [Tensor]) -> Tensor {
        let shape = matrices[0].shape, n = matrices[0].count
        return Tensor(shape: [matrices.count] + shape) { out in
            for (e, m) in matrices.enumerated() {
                m.withUnsafeBufferPointer { (out.baseAddress! + e * n).update(from: $0.baseAddress!, count: n) }
            }
        }
    }
}
