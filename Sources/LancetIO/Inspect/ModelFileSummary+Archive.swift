import LancetIR

extension ModelFileSummary {
    /// A summary of a Lancet archive (`ModelArchive`): the GGUF container's tensors, sizes, tokenizer and provenance,
    /// and the model's architecture read back from the archived IR (the container's own architecture key only says
    /// `lancet-archive`): blocks, widths per block (a factorised gate counts by its outer factor's rows), vocabulary,
    /// RoPE θ, RMS ε, tied embeddings, low-rank linears and tensors shared across blocks. Reading the IR loads the
    /// weights, as `lancet inspect` does anyway.
    public init(archive file: GGUFFile) throws {
        self.init(gguf: file)
        format = "lancet"
        describe(try ModelArchive.read(file.path).model)
    }

    /// A summary of a Lancet archive in a safetensors file: its tensors (zeros counted), its file size, the
    /// tokenizer it keeps and, read back from the archived IR, everything `init(archive:)` reports.
    public init(safetensorsArchive path: String) throws {
        let file = try ModelArchive.openSafetensors(path)
        let model = try ModelArchive.decode(file, weights: nil)
        let entries = file.tensors.map { info -> TensorEntry in
            TensorEntry(name: info.name, type: info.dtype.name, shape: info.shape, bytes: info.byteCount,
                        zeros: try? ZeroWeightCount.zeros(in: file.tensor(info)))
        }
        let tokenizer = model.tokenizer as? Tokenizer
        self.init(format: "lancet-safetensors", path: path, architecture: model.config.architecture, name: nil, blocks: model.blocks.count,
                  hiddenSize: model.config.hiddenSize, heads: [], kvHeads: [], ffnWidth: [], vocabularySize: model.config.vocabularySize,
                  contextLength: model.config.contextLength, tokenizerKind: tokenizer.map { $0.kind == .byteLevelBPE ? "gpt2" : "llama" },
                  tokenizerVocabularySize: tokenizer?.tokenCount, tensors: entries,
                  parameterCount: entries.reduce(0) { $0 + $1.elementCount }, provenance: model.provenance)
        fileType = dominantMatrixType
        fileBytes = FileSize.bytes(ofFile: path)
        if let tokenizer {
            setTokenizer(bos: tokenizer.bos, eos: tokenizer.eos, addsBOS: tokenizer.addBOS, tokens: tokenizer.tokens, chatTemplate: tokenizer.chatTemplate)
        }
        describe(model)
    }

    /// Sets the architecture fields from an archived model's IR.
    private mutating func describe(_ model: Model) {
        let c = model.config
        func perBlock(_ values: [Int]) -> [Int] { Set(values).count == 1 ? [values[0]] : values }
        let attention = model.blocks.map { LlamaBlock.attentionSizes(of: $0) }
        architecture = c.architecture
        name = c.name.isEmpty ? name : c.name
        blocks = model.blocks.count
        hiddenSize = c.hiddenSize
        heads = perBlock(attention.map { $0?.heads ?? 0 })
        kvHeads = perBlock(attention.map { $0?.kvHeads ?? 0 })
        ffnWidth = perBlock(model.blocks.map { LlamaBlock.gateWidth(of: $0) ?? 0 })
        vocabularySize = c.vocabularySize
        contextLength = c.contextLength
        ropeTheta = c.rope.theta
        rmsEpsilon = c.normEpsilon
        tiedEmbeddings = model.outputHead == nil
        lowRankLinears = model.blocks.reduce(0) { $0 + LlamaBlock.lowRankLinearCount(of: $1) }
        sharedTensors = model.sharedParameterGroups.count
    }
}
