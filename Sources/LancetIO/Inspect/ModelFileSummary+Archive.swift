import LancetIR

extension ModelFileSummary {
    /// A summary of a Lancet archive (`ModelArchive`): the GGUF container's tensors, sizes, tokenizer and provenance,
    /// and the model's architecture read back from the archived IR (the container's own architecture key only says
    /// `lancet-archive`): blocks, widths per block (a factorised gate counts by its outer factor's rows), vocabulary,
    /// RoPE θ, RMS ε, tied embeddings, low-rank linears and tensors shared across blocks. Reading the IR loads the
    /// weights, as `lancet inspect` does anyway.
    public init(archive file: GGUFFile) throws {
        self.init(gguf: file)
        let model = try ModelArchive.read(file.path).model
        let c = model.config
        func perBlock(_ values: [Int]) -> [Int] { Set(values).count == 1 ? [values[0]] : values }
        let attention = model.blocks.map { LlamaBlock.attentionSizes(of: $0) }
        format = "lancet"
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
