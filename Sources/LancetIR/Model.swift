import LancetTensor

/// A decoder-only language model in Lancet's IR: configuration, token embedding, an ordered list of
/// blocks, the final norm, the output head (tied or not), the tokenizer and the provenance log.
public struct Model: Sendable {
    /// Model-wide settings.
    public var config: ModelConfig
    /// Token embedding, `[vocabulary, hidden]`.
    public var embedding: Tensor
    /// The decoder blocks in order.
    public var blocks: [Block]
    /// Weight of the final RMS norm, `[hidden]`.
    public var finalNorm: Tensor
    /// Output head `[vocabulary, hidden]`; nil when tied to the embedding.
    public var outputHead: Tensor?
    /// The tokenizer, when the source file carried one.
    public var tokenizer: (any ModelTokenizer)?
    /// Provenance records of the surgery applied so far (JSON objects, oldest first).
    public var provenance: [String]
    /// Free-form metadata carried from the source file to exports (e.g. `general.name`, chat template).
    public var annotations: [String: String]

    /// Creates a model.
    public init(config: ModelConfig, embedding: Tensor, blocks: [Block], finalNorm: Tensor, outputHead: Tensor?,
                tokenizer: (any ModelTokenizer)? = nil, provenance: [String] = [], annotations: [String: String] = [:]) {
        self.config = config
        self.embedding = embedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.outputHead = outputHead
        self.tokenizer = tokenizer
        self.provenance = provenance
        self.annotations = annotations
    }

    /// The output projection actually used (the embedding when tied).
    public var head: Tensor { outputHead ?? embedding }

    /// Whether the output head shares the embedding's weights.
    public var isTied: Bool { outputHead == nil }

    /// Total parameter elements (embedding, blocks, norm, untied head); a parameter several blocks share
    /// (`sharedParameterGroups`) counts once.
    public var parameterCount: Int {
        let all = embedding.count + blocks.reduce(0) { $0 + $1.parameterCount } + finalNorm.count + (outputHead?.count ?? 0)
        return all - sharedParameters.reduce(0) { $0 + ($1.paths.count - 1) * $1.tensor.count }
    }

    /// Parameter elements of the blocks that survive their masks.
    public var keptBlockParameterCount: Int { blocks.reduce(0) { $0 + $1.keptParameterCount } }

    /// Block parameters stored once for several blocks: groups (two or more, in block order) of model-wide paths
    /// whose tensors are one and the same memory (unmasked ones). A pass shares a parameter by giving several blocks the same
    /// `Tensor` value (a cross-layer decomposition's shared factor); Lancet's archive then writes it once, and the
    /// runtime holds it once. Changing one block's copy (a fit) unshares it, as value semantics say.
    public var sharedParameterGroups: [[String]] { sharedParameters.map(\.paths) }

    /// Each tensor several blocks hold, with the paths holding it (two or more, in block order).
    private var sharedParameters: [(tensor: Tensor, paths: [String])] {
        var holders: [(tensor: Tensor, paths: [String])] = []
        for (i, block) in blocks.enumerated() {
            for name in block.parameters.keys.sorted() where block.masks[name] == nil {
                let t = block.parameters[name]!
                let path = Model.path(block: i, name)
                if let k = holders.firstIndex(where: { $0.tensor.count == t.count && $0.tensor.sharesStorage(with: t) }) {
                    holders[k].paths.append(path)
                } else {
                    holders.append((t, [path]))
                }
            }
        }
        return holders.filter { $0.paths.count > 1 }
    }

    /// The model-wide path of a block parameter: `blocks.<index>.<name>`.
    public static func path(block: Int, _ name: String) -> String { "blocks.\(block).\(name)" }
}
