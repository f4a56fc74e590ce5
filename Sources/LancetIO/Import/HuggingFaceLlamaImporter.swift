import Foundation
import LancetIR
import LancetTensor

/// Builds a `Model` from a Hugging Face folder of the Llama family: `config.json`, safetensors (single
/// file or sharded with an index) and `tokenizer.json`. Hugging Face stores q/k rows in the "halves"
/// RoPE pairing, so the model's RoPE ops use that pairing and no weights are permuted.
/// Strict like the GGUF importer: the config passes the same `LlamaHyperparameters` checks,
/// `num_hidden_layers` is checked against the layers whose tensors the checkpoint holds, every tensor is
/// checked, must be used and passes `NonFiniteWeightCheck`. Provenance records are read
/// from the first safetensors file's `__metadata__` (`lancet.provenance`, a JSON array of strings).
public enum HuggingFaceLlamaImporter {
    /// Imports the model in `folder`, refusing non-finite weights unless `LANCET_ALLOW_NONFINITE=1` is set.
    public static func load(folder: String) throws -> Model {
        try load(folder: folder, weights: NonFiniteWeightCheck(policy: LoadOptions.fromEnvironment.nonFiniteWeights))
    }

    /// Imports the model in `folder`; `weights` checks every tensor loaded (and collects findings under `.report`).
    public static func load(folder: String, weights: NonFiniteWeightCheck) throws -> Model {
        let config = try LlamaFamilyConfig.load(path: folder + "/config.json")
        let checkpoint = try SafetensorsCheckpoint(directory: folder)
        func fail(_ reason: String) -> ModelImportError { ModelImportError(folder, reason) }
        try checkLayerCount(config, checkpoint, folder: folder)
        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard checkpoint.contains(name) else { throw fail("tensor '\(name)' is missing") }
            let shard = try checkpoint.shard(holding: name)
            let t = try shard.tensor(name)
            guard t.shape == shape else { throw fail("tensor '\(name)' has shape \(t.shape), expected \(shape)") }
            try weights.check(t, name: name, file: shard.path, importPath: folder)
            used.insert(name)
            return t
        }

        let (h, d) = (config.hiddenSize, config.headDimension)
        let (heads, kv, ffn) = (config.numAttentionHeads, config.numKeyValueHeads, config.intermediateSize)
        guard !config.mlpBias, !config.hasOutputProjectionBias else {
            throw fail("config.json: mlp_bias and an attention output bias are not supported")
        }
        let scaling: RopeConfig.Scaling
        switch config.ropeScaling?.kind {
        case nil: scaling = .none
        case .linear?: scaling = .linear(factor: config.ropeScaling!.factor)
        case .llama3?:
            let s = config.ropeScaling!
            guard let lo = s.lowFreqFactor, let hi = s.highFreqFactor, let orig = s.originalMaxPositionEmbeddings else {
                throw fail("config.json: rope_scaling of type llama3 needs low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            scaling = .llama3(factor: s.factor, lowFrequencyFactor: lo, highFrequencyFactor: hi, originalContext: orig)
        case let kind?: throw fail("config.json: rope_scaling type '\(kind.rawValue)' is not supported (supported: linear, llama3)")
        }
        let rope = RopeConfig(theta: config.ropeTheta, rotaryDimensions: d, pairing: .halves, scaling: scaling)
        let attention = LlamaBlock.Attention(heads: heads, kvHeads: kv, headDimensions: d, qkvBias: config.hasQKVBias,
                                             window: config.effectiveSlidingWindow)
        var blocks: [Block] = []
        for i in 0..<config.numHiddenLayers {
            typealias N = LlamaTensorNames
            var p: [String: Tensor] = [
                "attn_norm.weight": try tensor(N.attentionNorm(i), [h]),
                "attn.q.weight": try tensor(N.attention(i, .query), [heads * d, h]),
                "attn.k.weight": try tensor(N.attention(i, .key), [kv * d, h]),
                "attn.v.weight": try tensor(N.attention(i, .value), [kv * d, h]),
                "attn.o.weight": try tensor(N.attention(i, .output), [h, heads * d]),
                "mlp_norm.weight": try tensor(N.mlpNorm(i), [h]),
                "mlp.gate.weight": try tensor(N.mlp(i, .gate), [ffn, h]),
                "mlp.up.weight": try tensor(N.mlp(i, .up), [ffn, h]),
                "mlp.down.weight": try tensor(N.mlp(i, .down), [h, ffn]),
            ]
            if config.hasQKVBias {
                p["attn.q.bias"] = try tensor(N.attention(i, .query, bias: true), [heads * d])
                p["attn.k.bias"] = try tensor(N.attention(i, .key, bias: true), [kv * d])
                p["attn.v.bias"] = try tensor(N.attention(i, .value, bias: true), [kv * d])
            }
            blocks.append(LlamaBlock.make(attention: attention, hasMLP: true, epsilon: Float(config.rmsNormEps), rope: rope, parameters: p))
        }
        let embedding = try tensor(LlamaTensorNames.embedding, [config.vocabSize, h])
        let norm = try tensor(LlamaTensorNames.finalNorm, [h])
        var head: Tensor?
        if checkpoint.contains(LlamaTensorNames.outputHead) {
            head = try tensor(LlamaTensorNames.outputHead, [config.vocabSize, h])
            if config.tieWordEmbeddings && head == embedding { head = nil }
        } else if !config.tieWordEmbeddings {
            throw fail("tensor '\(LlamaTensorNames.outputHead)' is missing and tie_word_embeddings is false")
        }
        if let extra = checkpoint.tensorNames.first(where: { !used.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }) {
            throw fail("tensor '\(extra)' is not part of a \(config.modelType.rawValue) model")
        }
        let modelConfig = ModelConfig(architecture: config.modelType.rawValue, name: URL(fileURLWithPath: folder).lastPathComponent,
                                      hiddenSize: h, vocabularySize: config.vocabSize, contextLength: config.maxPositionEmbeddings,
                                      normEpsilon: config.rmsNormEps, rope: rope)
        var model = Model(config: modelConfig, embedding: embedding, blocks: blocks, finalNorm: norm, outputHead: head)
        if let first = checkpoint.fileNames.first, let json = try checkpoint.shard(named: first).metadata["lancet.provenance"] {
            guard let records = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] else {
                throw fail("\(first): __metadata__ 'lancet.provenance' must be a JSON array of strings")
            }
            model.provenance = records
        }
        if FileManager.default.fileExists(atPath: folder + "/tokenizer.json") {
            model.tokenizer = try Tokenizer(huggingFaceFolder: URL(fileURLWithPath: folder))
        }
        do { try Verifier.verify(model) } catch let e as VerifierError { throw fail("the imported model does not verify: \(e)") }
        return model
    }

    /// Refuses a `num_hidden_layers` larger than the layers whose tensors the checkpoint holds.
    static func checkLayerCount(_ config: LlamaFamilyConfig, _ checkpoint: SafetensorsCheckpoint, folder: String) throws {
        let prefix = "model.layers."
        let present = LlamaHyperparameters.blocksWithTensors(checkpoint.weightMap.keys, prefix: prefix)
        if let reason = LlamaHyperparameters.blockCountProblem(config.numHiddenLayers, blocksWithTensors: present, tensorPrefix: prefix) {
            throw ModelImportError(folder, "config.json: num_hidden_layers \(reason)")
        }
    }
}

extension ModelFileSummary {
    /// A summary of a Hugging Face folder from its `config.json`, tokenizer and safetensors, with the zeros of
    /// every tensor counted.
    public init(huggingFaceFolder folder: String) throws {
        let config = try LlamaFamilyConfig.load(path: folder + "/config.json")
        let checkpoint = try SafetensorsCheckpoint(directory: folder)
        try HuggingFaceLlamaImporter.checkLayerCount(config, checkpoint, folder: folder)
        let entries = try checkpoint.tensorNames.map { name -> TensorEntry in
            let info = try checkpoint.info(name)
            let zeros = try? ZeroWeightCount.zeros(in: checkpoint.tensor(name))
            return TensorEntry(name: name, type: info.dtype.name, shape: info.shape, bytes: info.byteCount, zeros: zeros)
        }
        let tokenizerJSON = folder + "/tokenizer.json"
        let tokenizer = FileManager.default.fileExists(atPath: tokenizerJSON) ? try? Tokenizer(huggingFaceFolder: URL(fileURLWithPath: folder)) : nil
        self.init(format: "safetensors", path: folder, architecture: config.modelType.rawValue, name: nil, blocks: config.numHiddenLayers,
                  hiddenSize: config.hiddenSize, heads: [config.numAttentionHeads], kvHeads: [config.numKeyValueHeads],
                  ffnWidth: [config.intermediateSize], vocabularySize: config.vocabSize, contextLength: config.maxPositionEmbeddings,
                  tokenizerKind: tokenizer.map { _ in "gpt2" }, tokenizerVocabularySize: tokenizer?.tokenCount,
                  tensors: entries, parameterCount: entries.reduce(0) { $0 + $1.shape.reduce(1, *) }, provenance: [])
        fileType = dominantMatrixType
        fileBytes = checkpoint.fileNames.reduce(0) { $0 + (FileSize.bytes(ofFile: folder + "/" + $1) ?? 0) }
        ropeTheta = config.ropeTheta
        rmsEpsilon = config.rmsNormEps
        tiedEmbeddings = config.tieWordEmbeddings || !checkpoint.contains("lm_head.weight")
        if let tokenizer {
            // The folder's tokenizer reads chat_template.jinja when tokenizer_config.json has no template.
            setTokenizer(bos: tokenizer.bos, eos: tokenizer.eos, addsBOS: tokenizer.addBOS, tokens: tokenizer.tokens, chatTemplate: tokenizer.chatTemplate)
        }
    }
}
