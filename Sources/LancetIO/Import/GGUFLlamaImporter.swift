import LancetIR
import LancetTensor

/// Builds a `Model` from a GGUF file of the Llama family (`llama`, `mistral`, `qwen2`, and `deci` with
/// per-layer sizes). Strict: every size is read from the metadata, every tensor must be used, shapes are
/// checked, and the offending key or tensor is named in the error. Weights are dequantised to Float32 once
/// (F32 tensors stay views of the mapped file). Blocks listed in `lancet.attention_free_blocks` and
/// `lancet.ffn_free_blocks` (written by `GGUFExporter` for llama.cpp's deci loader) hold no-op placeholder
/// tensors for a missing sub-layer; they are checked to be no-ops and imported without that sub-layer.
///
/// The sizes and constants pass `LlamaHyperparameters`' checks (the same as the Hugging Face loader's);
/// `block_count` is checked against the blocks whose tensors the file holds before anything is sized by
/// it; every weight passes `NonFiniteWeightCheck`.
public enum GGUFLlamaImporter {
    /// Architectures this importer reads, and the RoPE pairing llama.cpp uses for each.
    public static let architectures: [String: RopePairing] = ["llama": .adjacent, "mistral": .adjacent, "deci": .adjacent, "qwen2": .halves]

    /// Imports `file`, refusing non-finite weights unless `LANCET_ALLOW_NONFINITE=1` is set.
    public static func load(_ file: GGUFFile) throws -> Model {
        try load(file, weights: NonFiniteWeightCheck(policy: LoadOptions.fromEnvironment.nonFiniteWeights))
    }

    /// Imports `file`; `weights` checks every tensor loaded (and collects findings under `.report`).
    public static func load(_ file: GGUFFile, weights: NonFiniteWeightCheck) throws -> Model {
        let path = file.path
        func fail(_ reason: String) -> ModelImportError { ModelImportError(path, reason) }
        guard let arch = file.string("general.architecture") else { throw fail("metadata 'general.architecture' is missing") }
        guard let pairing = architectures[arch] else {
            throw fail("architecture '\(arch)' is not supported (supported: \(architectures.keys.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"] else { throw fail("metadata '\(arch).\(key)' is missing") }
            guard let i = v.intValue, i >= 0 else { throw fail("metadata '\(arch).\(key)' must be a non-negative integer, got \(v)") }
            return i
        }
        /// A per-layer integer: a scalar applies to every layer, an array gives one value per layer (`deci`).
        func perLayer(_ key: String, count: Int, default fallback: Int? = nil) throws -> [Int] {
            guard let v = file.metadata["\(arch).\(key)"] else {
                if let fallback { return Array(repeating: fallback, count: count) }
                throw fail("metadata '\(arch).\(key)' is missing")
            }
            if let i = v.intValue { return Array(repeating: i, count: count) }
            guard let a = v.arrayValue else { throw fail("metadata '\(arch).\(key)' must be an integer or an array of integers") }
            let ints = a.compactMap(\.intValue)
            guard ints.count == a.count, ints.count == count else {
                throw fail("metadata '\(arch).\(key)' has \(a.count) entries, expected \(count) integers (one per block)")
            }
            return ints
        }

        let blockCount = try int("block_count")
        let present = LlamaHyperparameters.blocksWithTensors(file.tensors.lazy.map(\.name), prefix: "blk.")
        if let reason = LlamaHyperparameters.blockCountProblem(blockCount, blocksWithTensors: present, tensorPrefix: "blk.") {
            throw fail("metadata '\(arch).block_count' \(reason)")
        }
        let hidden = try int("embedding_length")
        let heads = try perLayer("attention.head_count", count: blockCount)
        let kvHeads = try perLayer("attention.head_count_kv", count: blockCount, default: heads.max() ?? 0)
        let ffn = try perLayer("feed_forward_length", count: blockCount)
        let maxHeads = heads.max() ?? 0
        guard maxHeads > 0 else { throw fail("metadata '\(arch).attention.head_count': no block has attention heads") }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = file.metadata["\(arch).\(key)"] else { return nil }
            guard let i = v.intValue else { throw fail("metadata '\(arch).\(key)' must be an integer, got \(v)") }
            return i
        }
        func optionalNumber(_ key: String) throws -> Double? {
            guard let v = file.metadata["\(arch).\(key)"] else { return nil }
            guard let d = v.doubleValue else { throw fail("metadata '\(arch).\(key)' must be a number, got \(v)") }
            return d
        }
        let keyLength = try optionalInt("attention.key_length")
        let headDim = keyLength ?? hidden / maxHeads
        guard let eps = try optionalNumber("attention.layer_norm_rms_epsilon") else {
            throw fail("metadata '\(arch).attention.layer_norm_rms_epsilon' is missing")
        }
        let theta = try optionalNumber("rope.freq_base") ?? 10000
        let statedRotary = try optionalInt("rope.dimension_count")
        let rotary = statedRotary ?? headDim
        let contextLength = try optionalInt("context_length") ?? 2048

        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let info = file.info(name) else { throw fail("tensor '\(name)' is missing") }
            guard info.shape == shape else { throw fail("tensor '\(name)' has shape \(info.shape), expected \(shape)") }
            used.insert(name)
            let t: Tensor
            do { t = try file.tensor(info) } catch let e as GGUFError { throw fail(e.reason) }
            try weights.check(t, name: name, file: path, importPath: path)
            return t
        }
        func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
            file.info(name) == nil ? nil : try tensor(name, shape)
        }

        guard let embInfo = file.info("token_embd.weight"), embInfo.shape.count == 2, embInfo.shape[1] == hidden else {
            throw fail("tensor 'token_embd.weight' is missing or not [vocabulary, \(hidden)]")
        }
        let vocab = embInfo.shape[0]
        /// Sub-layers that `GGUFExporter` wrote as exact no-ops for llama.cpp's deci loader.
        func blockList(_ key: String) throws -> Set<Int> {
            guard let v = file.metadata[key] else { return [] }
            guard let items = v.arrayValue, case let ints = items.compactMap(\.intValue), ints.count == items.count,
                  ints.allSatisfy({ (0..<blockCount).contains($0) }) else {
                throw fail("metadata '\(key)' must be an array of block indices below \(blockCount)")
            }
            return Set(ints)
        }
        let attentionFree = try blockList("lancet.attention_free_blocks")
        let ffnFree = try blockList("lancet.ffn_free_blocks")
        // Placeholder attention (heads > 0, no KV heads) counts as no attention for the shared checks.
        let checked = LlamaHyperparameters(
            blockCount: blockCount, hiddenSize: hidden, vocabularySize: vocab, contextLength: contextLength,
            heads: heads.indices.map { attentionFree.contains($0) ? 0 : heads[$0] }, kvHeads: kvHeads, headDimension: keyLength,
            rotaryDimensions: statedRotary, ffnWidths: ffn, normEpsilon: eps, ropeTheta: theta)
        if let (field, reason) = checked.problem(names: { metadataKey($0, arch) }) {
            let subject = field == .vocabularySize ? "tensor 'token_embd.weight': the vocabulary (its rows)" : "metadata '\(metadataKey(field, arch))'"
            throw fail("\(subject) \(reason)")
        }
        var scaling = RopeConfig.Scaling.none
        if let factors = try optional("rope_freqs.weight", [rotary / 2]) {
            scaling = .frequencyFactors(factors.scalars)
        } else if let type = file.string("\(arch).rope.scaling.type"), type != "none" {
            guard type == "linear", let f = file.double("\(arch).rope.scaling.factor") else {
                throw fail("metadata '\(arch).rope.scaling.type' = '\(type)' is not supported (supported: none, linear)")
            }
            scaling = .linear(factor: f)
        }
        let rope = RopeConfig(theta: theta, rotaryDimensions: rotary, pairing: pairing, scaling: scaling)
        let hasBias = arch == "qwen2"

        /// Marks a placeholder tensor used after checking that it is the no-op the exporter writes.
        func placeholder(_ name: String, _ shape: [Int], zero: Bool) throws {
            let t = try tensor(name, shape)
            let bad = t.withUnsafeBufferPointer { p in p.contains { zero ? $0 != 0 : $0 != 1 } }
            guard !bad else { throw fail("tensor '\(name)' is listed as a placeholder but is not all \(zero ? "zeros" : "ones")") }
        }

        // A mixture-of-experts model (Mixtral's layout): every block's FFN is `expert_count` experts of `feed_forward_length`.
        var experts: (count: Int, used: Int)?
        if let count = try optionalInt("expert_count"), count > 0 {
            guard let used = try optionalInt("expert_used_count"), (1...count).contains(used) else {
                throw fail("metadata '\(arch).expert_used_count' must be in 1...\(count) (the experts per token) when '\(arch).expert_count' is \(count)")
            }
            experts = (count, used)
        }
        var blocks: [Block] = []
        blocks.reserveCapacity(blockCount)
        for i in 0..<blockCount {
            let p = "blk.\(i)."
            var params: [String: Tensor] = [:]
            var attention: LlamaBlock.Attention?
            if attentionFree.contains(i) {
                guard heads[i] > 0, kvHeads[i] == 0 else {
                    throw fail("block \(i) is listed in 'lancet.attention_free_blocks' but is not a linear-attention placeholder (heads \(heads[i]), KV heads \(kvHeads[i]))")
                }
                try placeholder(p + "attn_norm.weight", [hidden], zero: false)
                try placeholder(p + "attn_output.weight", [hidden, hidden], zero: true)
            } else if heads[i] > 0 {
                let (h, kv) = (heads[i], kvHeads[i])
                guard kv > 0, h % kv == 0 else { throw fail("block \(i): \(kv) KV heads do not divide \(h) heads") }
                attention = LlamaBlock.Attention(heads: h, kvHeads: kv, headDimensions: headDim, qkvBias: hasBias)
                params["attn_norm.weight"] = try tensor(p + "attn_norm.weight", [hidden])
                params["attn.q.weight"] = try tensor(p + "attn_q.weight", [h * headDim, hidden])
                params["attn.k.weight"] = try tensor(p + "attn_k.weight", [kv * headDim, hidden])
                params["attn.v.weight"] = try tensor(p + "attn_v.weight", [kv * headDim, hidden])
                params["attn.o.weight"] = try tensor(p + "attn_output.weight", [hidden, h * headDim])
                if hasBias {
                    params["attn.q.bias"] = try tensor(p + "attn_q.bias", [h * headDim])
                    params["attn.k.bias"] = try tensor(p + "attn_k.bias", [kv * headDim])
                    params["attn.v.bias"] = try tensor(p + "attn_v.bias", [kv * headDim])
                }
            }
            let hasMLP = ffn[i] > 0 && !ffnFree.contains(i)
            if ffnFree.contains(i) {
                try placeholder(p + "ffn_norm.weight", [hidden], zero: false)
                for name in ["ffn_gate.weight", "ffn_up.weight"] { try placeholder(p + name, [ffn[i], hidden], zero: true) }
                try placeholder(p + "ffn_down.weight", [hidden, ffn[i]], zero: true)
            } else if ffn[i] > 0, experts == nil {
                params["mlp_norm.weight"] = try tensor(p + "ffn_norm.weight", [hidden])
                params["mlp.gate.weight"] = try tensor(p + "ffn_gate.weight", [ffn[i], hidden])
                params["mlp.up.weight"] = try tensor(p + "ffn_up.weight", [ffn[i], hidden])
                params["mlp.down.weight"] = try tensor(p + "ffn_down.weight", [hidden, ffn[i]])
            }
            var block = LlamaBlock.make(attention: attention, hasMLP: hasMLP, epsilon: Float(eps), rope: rope, parameters: params)
            if let experts, hasMLP {
                // llama.cpp's Mixtral layout: a linear router, softmax over the experts, top-k renormalised.
                let moe = MoEOp(prefix: LlamaBlock.mixtureNode, experts: experts.count, topK: experts.used, normalizeTopK: true)
                var mixture = ["mlp_norm.weight": try tensor(p + "ffn_norm.weight", [hidden]),
                               moe.routerNames[0]: try tensor(p + "ffn_gate_inp.weight", [experts.count, hidden])]
                let gate = try tensor(p + "ffn_gate_exps.weight", [experts.count, ffn[i], hidden])
                let up = try tensor(p + "ffn_up_exps.weight", [experts.count, ffn[i], hidden])
                let down = try tensor(p + "ffn_down_exps.weight", [experts.count, hidden, ffn[i]])
                for e in 0..<experts.count {
                    let n = moe.expertNames(e)
                    (mixture[n.gate], mixture[n.up], mixture[n.down]) = (gate.slicingRows(e..<(e + 1)).reshaped([ffn[i], hidden]),
                                                                         up.slicingRows(e..<(e + 1)).reshaped([ffn[i], hidden]),
                                                                         down.slicingRows(e..<(e + 1)).reshaped([hidden, ffn[i]]))
                }
                do { block = try LlamaBlock.replacingMLP(of: block, with: moe, parameters: mixture) } catch { throw fail("block \(i): \(error)") }
            }
            blocks.append(block)
        }
        let embedding = try tensor("token_embd.weight", [vocab, hidden])
        let norm = try tensor("output_norm.weight", [hidden])
        let head = try optional("output.weight", [vocab, hidden])
        let unused = file.tensors.map(\.name).filter { !used.contains($0) }
        guard unused.isEmpty else {
            throw fail("tensor '\(unused[0])' is not part of a \(arch) model\(unused.count > 1 ? " (and \(unused.count - 1) more)" : "")")
        }

        var annotations: [String: String] = [:]
        for key in ["general.name", "general.basename", "general.size_label", "general.license", "tokenizer.chat_template"] {
            if let s = file.string(key) { annotations[key] = s }
        }
        if let records = file.metadata["lancet.provenance"]?.arrayValue {
            annotations["lancet.provenance.count"] = String(records.count)
        }
        let config = ModelConfig(
            architecture: arch == "deci" ? "llama" : arch, name: file.string("general.name") ?? "unnamed",
            hiddenSize: hidden, vocabularySize: vocab, contextLength: contextLength, normEpsilon: eps, rope: rope)
        let provenance = file.metadata["lancet.provenance"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let model = Model(config: config, embedding: embedding, blocks: blocks, finalNorm: norm, outputHead: head,
                          provenance: provenance, annotations: annotations)
        do { try Verifier.verify(model) } catch let e as VerifierError { throw fail("the imported model does not verify: \(e)") }
        return model
    }

    /// The metadata key (or tensor) that states `field` in a GGUF file of architecture `arch`.
    static func metadataKey(_ field: LlamaHyperparameters.Field, _ arch: String) -> String {
        switch field {
        case .blockCount: "\(arch).block_count"
        case .hiddenSize: "\(arch).embedding_length"
        case .vocabularySize: "token_embd.weight rows"
        case .contextLength: "\(arch).context_length"
        case .heads: "\(arch).attention.head_count"
        case .kvHeads: "\(arch).attention.head_count_kv"
        case .headDimension: "\(arch).attention.key_length"
        case .rotaryDimensions: "\(arch).rope.dimension_count"
        case .ffnWidth: "\(arch).feed_forward_length"
        case .normEpsilon: "\(arch).attention.layer_norm_rms_epsilon"
        case .ropeTheta: "\(arch).rope.freq_base"
        }
    }
}
