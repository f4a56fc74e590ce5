import Foundation
import LancetIR
import LancetTensor

/// Writes a `Model` as a Hugging Face folder that transformers loads: `config.json` (`LlamaFamilyConfig`),
/// `model.safetensors` (or shards with an index when larger than `maxShardBytes`), and, when the model's
/// tokenizer is a `Tokenizer`, `tokenizer.json`, `tokenizer_config.json` and `generation_config.json`.
///
/// Only models that transformers' config can express are written: every block with both sub-layers, the
/// same heads, KV heads, head size and FFN width, dense MLPs, and RoPE scaling that `rope_scaling` names.
/// Anything else (pruned heads in some blocks, removed sub-layers) is a `ModelExportError` that names the block and
/// suggests GGUF, whose `deci` architecture holds it. The `model_type` is `llama`, `mistral` when attention has a
/// sliding window, `qwen2` when q/k/v have biases, `mixtral` when every block is a mixture of experts of the same shape
/// with a linear router and renormalised softmax weights (a shared expert folded into every routed expert, as for GGUF).
///
/// Weights: masked weights as they are, low-rank linears multiplied out to dense, q/k rows (and biases)
/// permuted from the `adjacent` RoPE pairing (GGUF) to `halves` (Hugging Face). The safetensors
/// `__metadata__` holds `lancet.provenance` (the provenance records as a JSON array of strings) and
/// `extraMetadata`. The folder is written all or nothing (`StagedFolder`): a failure leaves no folder, file or
/// temporary behind; with `overwrite: false` an existing file of the checkpoint is an error before anything
/// is written.
///
/// **Low-rank linears, factors kept** (`keepFactors: true`). A low-rank linear `y = (x·Aᵀ)·Bᵀ` is written as two
/// tensors in place of its weight: `<module>.0.weight` = A `[rank, in]` and `<module>.1.weight` = B `[out, rank]` (q/k rows
/// of B permuted to `halves`), the state dict of `torch.nn.Sequential(nn.Linear(in, rank, bias=False), nn.Linear(rank,
/// out, bias=False))`, and `config.json` gains `"lancet_low_rank": {"<module>": rank, …}`. transformers does not build
/// such modules itself; `Docs/Decomposition.md` shows the few lines that swap them in before loading the state dict.
///
/// ```swift
/// try HuggingFaceExporter.write(model, to: "out/pruned-hf", dtype: .bf16)
/// ```
public enum HuggingFaceExporter {
    /// The default shard size limit: 5 GB of tensor data per file, as transformers' `save_pretrained`.
    public static let defaultMaxShardBytes = 5_000_000_000

    /// Writes `model` into `folder` (created if needed) with tensors stored as `dtype` (F32, F16 or BF16).
    public static func write(_ model: Model, to folder: String, dtype: SafetensorsDType = .f32,
                             extraMetadata: [String: String] = [:], maxShardBytes: Int = defaultMaxShardBytes,
                             overwrite: Bool = false, keepFactors: Bool = false) throws {
        guard dtype.isWritable else { throw ModelExportError(folder, "dtype \(dtype.name) is not writable (use F32, F16 or BF16)") }
        try Verifier.verify(model)
        let blocks = try model.blocks.enumerated().map { try ExportBlock.read($1, index: $0, model: model, path: folder) }
        let config = try self.config(for: model, blocks: blocks, dtype: dtype, folder: folder)
        var configData = try mixtralConfig(try config.jsonData(path: folder + "/config.json"), blocks: blocks, path: folder + "/config.json")
        let factors = keepFactors ? lowRankModules(model) : [:]
        if !factors.isEmpty {
            configData = try editingJSON(configData, path: folder + "/config.json") { $0["lancet_low_rank"] = factors.mapValues { $0.rank } }
        }

        var files: [(name: String, data: Data)] = [("config.json", configData)]
        if let tokenizer = model.tokenizer as? Tokenizer {
            files.append(("tokenizer.json", try tokenizer.huggingFaceTokenizerJSON()))
            files.append(("tokenizer_config.json", try tokenizer.huggingFaceTokenizerConfigJSON(modelMaxLength: model.config.contextLength)))
            var generation: [String: Any] = ["_from_model_config": true]
            if let b = tokenizer.bos { generation["bos_token_id"] = Int(b) }
            if let e = tokenizer.eos { generation["eos_token_id"] = Int(e) }
            files.append(("generation_config.json", try JSONSerialization.data(withJSONObject: generation, options: [.sortedKeys, .prettyPrinted])))
        }

        var metadata = extraMetadata
        let provenance = try JSONSerialization.data(withJSONObject: model.provenance, options: [.withoutEscapingSlashes])
        metadata["lancet.provenance"] = String(decoding: provenance, as: UTF8.self)
        var writer = SafetensorsWriter(metadata: metadata)
        try addTensors(model, blocks: blocks, config: config, dtype: dtype, factors: factors, to: &writer)

        if !overwrite {
            for f in files { try AtomicFile.checkWritable(folder + "/" + f.name, overwrite: false) }
            if let existing = try SafetensorsWriter.existingCheckpointFiles(in: folder).sorted().first {
                throw FileWriteError(path: folder + "/" + existing, reason: "already exists (use --force to overwrite)")
            }
        }
        // All or nothing: a failure part-way leaves neither the folder nor any file of it (`StagedFolder`).
        try StagedFolder.write(to: folder, stale: { old in old.filter(SafetensorsWriter.isCheckpointFileName) }) { staging in
            try writer.writeCheckpoint(to: staging, maxShardBytes: maxShardBytes, overwrite: false)
            for f in files {
                try AtomicFile.write(to: staging + "/" + f.name, overwrite: false) { try $0.write(Array(f.data)) }
            }
        }
    }

    /// Throws the `ModelExportError` `write` would throw because transformers' config cannot express `model`
    /// (blocks of different sizes, a missing sub-layer, experts, RoPE it cannot name), without writing anything:
    /// the check `lancet validate` makes of a recipe's input model before any compute.
    public static func checkExpressible(_ model: Model, folder: String) throws {
        let blocks = try model.blocks.enumerated().map { try ExportBlock.read($1, index: $0, model: model, path: folder) }
        _ = try config(for: model, blocks: blocks, dtype: .f32, folder: folder)
    }

    /// The `config.json` of `model`, or a `ModelExportError` saying why transformers cannot express it.
    static func config(for model: Model, blocks: [ExportBlock], dtype: SafetensorsDType, folder: String) throws -> LlamaFamilyConfig {
        func fail(_ block: Int?, _ reason: String) -> ModelExportError {
            ModelExportError(folder, block: block, reason + "; transformers' config gives every block the same sizes and both sub-layers — export as GGUF (deci) instead")
        }
        guard !blocks.isEmpty else { throw fail(nil, "the model has no blocks") }
        var layers: [(attention: ExportBlock.Attention, mlp: (width: Int, experts: Int, topK: Int))] = []
        for (i, b) in blocks.enumerated() {
            guard let a = b.attention else { throw fail(i, "has no attention sub-layer") }
            switch b.ffn {
            case let .dense(m)?: layers.append((a, (m.width, 0, 0)))
            case let .moe(m)?: layers.append((a, (m.width, m.gate.count, m.topK)))
            case nil: throw fail(i, "has no MLP sub-layer")
            }
        }
        // Mixtral's config (the experts of every block alike) when the blocks are mixtures: all of them, with no biases.
        if let first = layers.firstIndex(where: { $0.mlp.experts > 0 }) {
            if let dense = layers.firstIndex(where: { $0.mlp.experts == 0 }) {
                throw fail(dense, "has a dense MLP while block \(first) is a mixture of experts (Mixtral's config makes every block one)")
            }
            if layers[first].attention.qBias != nil || layers[first].attention.window != nil {
                throw fail(first, "is a mixture of experts with q/k/v biases or a sliding window, which Mixtral's config does not express")
            }
        }
        // The sizes most blocks have; a block that differs from them is the one named.
        func shape(_ l: (attention: ExportBlock.Attention, mlp: (width: Int, experts: Int, topK: Int))) -> [Int] {
            [l.attention.heads, l.attention.kvHeads, l.attention.headDimensions, l.mlp.width, l.attention.qBias == nil ? 0 : 1, l.attention.window ?? 0,
             l.mlp.experts, l.mlp.topK]
        }
        let counts = Dictionary(layers.map { (shape($0), 1) }, uniquingKeysWith: +)
        let common = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key.lexicographicallyPrecedes($1.key) }!.key
        let (a0, m0) = layers.first { shape($0) == common }!
        for (i, (a, m)) in layers.enumerated() where shape((a, m)) != common {
            if m.width != m0.width { throw fail(i, "has FFN width \(m.width), the other blocks \(m0.width)") }
            if m.experts != m0.experts || m.topK != m0.topK {
                throw fail(i, "has \(m.experts) experts (top \(m.topK)), the other blocks \(m0.experts) (top \(m0.topK))")
            }
            if (a.qBias != nil) != (a0.qBias != nil) || a.window != a0.window { throw fail(i, "differs from the other blocks in q/k/v biases or sliding window") }
            throw fail(i, "has \(a.heads) heads / \(a.kvHeads) KV heads of size \(a.headDimensions), the other blocks \(a0.heads) / \(a0.kvHeads) of size \(a0.headDimensions)")
        }
        let c = model.config, rope = c.rope
        guard rope.rotaryDimensions == a0.headDimensions else {
            throw ModelExportError(folder, "RoPE rotates \(rope.rotaryDimensions) of \(a0.headDimensions) head dimensions; Llama-family configs rotate all")
        }
        let scaling: RopeScaling?
        switch rope.scaling {
        case .none: scaling = nil
        case let .linear(factor): scaling = RopeScaling(kind: .linear, factor: factor)
        case let .llama3(factor, low, high, original):
            scaling = RopeScaling(kind: .llama3, factor: factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original)
        case .frequencyFactors:
            throw ModelExportError(folder, "RoPE frequency factors (GGUF rope_freqs) have no rope_scaling equivalent in config.json; export as GGUF instead")
        }
        let bias = a0.qBias != nil
        let type: LlamaFamilyConfig.ModelType
        if a0.window != nil {
            guard !bias else { throw ModelExportError(folder, "a sliding window together with q/k/v biases has no Llama-family config") }
            type = .mistral
        } else {
            type = bias ? .qwen2 : (c.architecture == "mistral" ? .mistral : .llama)
        }
        let tokenizer = model.tokenizer as? Tokenizer
        var config = LlamaFamilyConfig(
            modelType: type, hiddenSize: c.hiddenSize, intermediateSize: m0.width, numHiddenLayers: blocks.count,
            numAttentionHeads: a0.heads, numKeyValueHeads: a0.kvHeads,
            headDim: a0.headDimensions * a0.heads == c.hiddenSize ? nil : a0.headDimensions,
            rmsNormEps: c.normEpsilon, ropeTheta: rope.theta, ropeScaling: scaling, maxPositionEmbeddings: c.contextLength,
            vocabSize: c.vocabularySize, tieWordEmbeddings: model.isTied, attentionBias: type == .qwen2 ? nil : false,
            bosTokenId: tokenizer?.bos.map(Int.init), eosTokenIds: tokenizer?.eos.map { [Int($0)] } ?? [],
            torchDtype: ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.name], slidingWindow: a0.window)
        if type == .qwen2 { config.useSlidingWindow = false }
        return config
    }

    /// Experts per block and per token when every block is a mixture of experts (checked by `config(for:)`), else nil.
    static func mixture(of blocks: [ExportBlock]) -> (experts: Int, topK: Int)? {
        guard case let .moe(m)? = blocks.first?.ffn else { return nil }
        return (m.gate.count, m.topK)
    }

    /// `config.json` as Mixtral's when the blocks are mixtures of experts: `model_type` `mixtral`, `intermediate_size`
    /// the experts' width, `num_local_experts`, `num_experts_per_tok` (transformers' Mixtral weighs the chosen experts by
    /// the router's softmax renormalised over them, as the exported mixtures do); otherwise unchanged.
    static func mixtralConfig(_ data: Data, blocks: [ExportBlock], path: String) throws -> Data {
        guard let (experts, topK) = mixture(of: blocks) else { return data }
        return try editingJSON(data, path: path) { object in
            object["model_type"] = "mixtral"
            object["architectures"] = ["MixtralForCausalLM"]
            object["num_local_experts"] = experts
            object["num_experts_per_tok"] = topK
            object["output_router_logits"] = false
            object["sliding_window"] = NSNull()
            for key in ["attention_bias", "mlp_bias"] { object[key] = nil }
        }
    }

    /// The JSON object `data` with `edit` applied, pretty-printed with sorted keys and a final newline.
    static func editingJSON(_ data: Data, path: String, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelExportError(path, "config.json did not encode as a JSON object")
        }
        edit(&object)
        var out = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// The low-rank linears of `model` by Hugging Face module path (`model.layers.3.self_attn.q_proj`): their factors.
    static func lowRankModules(_ model: Model) -> [String: (a: Tensor, b: Tensor, rank: Int)] {
        typealias N = LlamaTensorNames
        let names: [String: (Int) -> String] = [
            "attn.q": { N.attention($0, .query) }, "attn.k": { N.attention($0, .key) }, "attn.v": { N.attention($0, .value) },
            "attn.o": { N.attention($0, .output) }, "mlp.gate": { N.mlp($0, .gate) }, "mlp.up": { N.mlp($0, .up) }, "mlp.down": { N.mlp($0, .down) },
        ]
        var modules: [String: (a: Tensor, b: Tensor, rank: Int)] = [:]
        for (i, block) in model.blocks.enumerated() {
            for (node, op) in block.nodes(of: LinearOp.self) {
                guard let (a, b) = op.factors, let name = names[node.name]?(i), let ta = block.parameters[a], let tb = block.parameters[b] else { continue }
                modules[String(name.dropLast(".weight".count))] = (ta, tb, ta.shape[0])
            }
        }
        return modules
    }

    /// Adds every tensor under its Hugging Face name, q/k rows in the `halves` pairing; the linears in `factors` as their
    /// two factors (`<module>.0.weight`, `<module>.1.weight`).
    static func addTensors(_ model: Model, blocks: [ExportBlock], config: LlamaFamilyConfig, dtype: SafetensorsDType,
                           factors: [String: (a: Tensor, b: Tensor, rank: Int)] = [:], to w: inout SafetensorsWriter) throws {
        typealias N = LlamaTensorNames
        let from = model.config.rope.pairing
        func halves(_ t: Tensor, _ heads: Int, _ d: Int) -> Tensor { RopePairing.permuteRows(t, heads: heads, headDim: d, from: from, to: .halves) }
        /// A linear's weight `name` (`….weight`), or its factors; `rows` permutes output rows (q/k).
        func linear(_ name: String, _ dense: Tensor, rows: (Tensor) -> Tensor = { $0 }) {
            let module = String(name.dropLast(".weight".count))
            if let f = factors[module] {
                w.add(module + ".0.weight", f.a, as: dtype)
                w.add(module + ".1.weight", rows(f.b), as: dtype)
            } else {
                w.add(name, rows(dense), as: dtype)
            }
        }
        w.add(N.embedding, model.embedding, as: dtype)
        for (i, b) in blocks.enumerated() {
            guard let a = b.attention, let ffn = b.ffn else { continue }  // `config(for:)` rejected these
            let d = a.headDimensions
            w.add(N.attentionNorm(i), a.norm, as: dtype)
            linear(N.attention(i, .query), a.q) { halves($0, a.heads, d) }
            linear(N.attention(i, .key), a.k) { halves($0, a.kvHeads, d) }
            linear(N.attention(i, .value), a.v)
            linear(N.attention(i, .output), a.o)
            if let qb = a.qBias, let kb = a.kBias, let vb = a.vBias {
                w.add(N.attention(i, .query, bias: true), halves(qb, a.heads, d), as: dtype)
                w.add(N.attention(i, .key, bias: true), halves(kb, a.kvHeads, d), as: dtype)
                w.add(N.attention(i, .value, bias: true), vb, as: dtype)
            }
            switch ffn {
            case let .dense(m):
                w.add(N.mlpNorm(i), m.norm, as: dtype)
                linear(N.mlp(i, .gate), m.gate)
                linear(N.mlp(i, .up), m.up)
                linear(N.mlp(i, .down), m.down)
            case let .moe(m):
                // Mixtral's names: the router `gate`, each expert's w1 (gate), w2 (down), w3 (up).
                w.add(N.mlpNorm(i), m.norm, as: dtype)
                let moe = "model.layers.\(i).block_sparse_moe"
                w.add(moe + ".gate.weight", m.router, as: dtype)
                for e in m.gate.indices {
                    w.add("\(moe).experts.\(e).w1.weight", m.gate[e], as: dtype)
                    w.add("\(moe).experts.\(e).w2.weight", m.down[e], as: dtype)
                    w.add("\(moe).experts.\(e).w3.weight", m.up[e], as: dtype)
                }
            }
        }
        w.add(N.finalNorm, model.finalNorm, as: dtype)
        if let head = model.outputHead { w.add(N.outputHead, head, as: dtype) }
    }
}
