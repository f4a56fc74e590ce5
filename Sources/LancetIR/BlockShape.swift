/// What a block is, read from its graph: the sizes of its attention and feed-forward sub-layers (either may be
/// absent), whether the FFN is dense or a mixture of experts, and which linears are low-rank. `recognize` accepts
/// exactly the graphs `LlamaBlock.make` builds (with a mixture in place of the MLP), comparing node by node, so
/// the exporters, structured slicing and importance scoring read one answer instead of each guessing.
public struct BlockShape: Sendable, Equatable {
    /// The feed-forward sub-layer.
    public enum FFN: Sendable, Equatable {
        /// A SwiGLU MLP of `width` channels.
        case dense(width: Int)
        /// A mixture of SwiGLU experts (node `node`).
        case moe(node: String, experts: Int, topK: Int, widths: [Int], sharedExpert: Bool, normalizeTopK: Bool)
    }

    /// The attention sizes, nil without an attention sub-layer.
    public var attention: LlamaBlock.Attention?
    /// The feed-forward sub-layer, nil without one.
    public var ffn: FFN?
    /// The rank of every low-rank linear, by node.
    public var lowRank: [String: Int]

    /// The op kinds a Llama-family block (dense or mixture) is made of.
    static let llamaKinds: Set<String> = [RMSNormOp.kind, LinearOp.kind, RopeOp.kind, AttentionOp.kind, SiLUOp.kind, MulOp.kind, AddOp.kind, MoEOp.kind]

    /// Whether every linear is dense and the FFN, if any, is a dense MLP: what structured slicing cuts.
    public var isDenseLlama: Bool { lowRank.isEmpty && { if case .moe = ffn { return false }; return true }() }

    /// The dense FFN width, if the block has a dense MLP.
    public var mlpWidth: Int? { if case let .dense(width) = ffn { return width }; return nil }

    /// The shape of `block`, or a `BlockShapeError` naming the first node that differs from the Llama-family block of
    /// the same sizes with norm ε `epsilon` and RoPE `rope` (the model's settings).
    public static func recognize(_ block: Block, epsilon: Float, rope: RopeConfig) throws -> BlockShape {
        if let node = block.nodes.first(where: { !llamaKinds.contains($0.kind) }) {
            throw BlockShapeError("node '\(node.name)' is a '\(node.kind)' op, which no Llama-family format holds (llama.cpp and "
                                  + "transformers have no such op); a Lancet archive (.lancet) keeps it")
        }
        let moeNodes = block.nodes(of: MoEOp.self)
        guard moeNodes.count <= 1 else { throw BlockShapeError("has \(moeNodes.count) mixture-of-experts nodes; a Llama block has at most one") }
        let attention = LlamaBlock.attentionSizes(of: block)
        let moe = moeNodes.first
        let hasMLP = moe == nil && block.node("mlp.gate") != nil
        var expected = LlamaBlock.make(attention: attention, hasMLP: hasMLP, epsilon: epsilon, rope: rope, parameters: [:])
        if let moe {
            let residual = expected.output
            expected.nodes += [
                Node("mlp_norm", RMSNormOp(weight: BlockSchema.mlpNorm, epsilon: epsilon), inputs: [residual], outputs: [BlockSchema.mlpInput]),
                Node(moe.node.name, moe.op, inputs: [BlockSchema.mlpInput], outputs: moe.node.outputs),
                Node(block.nodes.last?.name ?? "mlp.residual", AddOp(), inputs: [residual] + moe.node.outputs, outputs: [block.output]),
            ]
            expected.output = block.output
        }
        guard block.input == expected.input else { throw BlockShapeError("reads its input as '\(block.input)', a Llama block reads '\(expected.input)'") }
        for i in 0..<max(block.nodes.count, expected.nodes.count) {
            let found = i < block.nodes.count ? signature(block.nodes[i]) : "nothing"
            let wanted = i < expected.nodes.count ? signature(expected.nodes[i]) : "nothing"
            guard found == wanted else {
                throw BlockShapeError("node \(i) is \(found), a Llama block has \(wanted) there (export writes Llama-family blocks only; "
                                      + "RoPE and norm ε must match the model's)")
            }
        }
        guard block.output == expected.output else { throw BlockShapeError("output value is '\(block.output)', expected '\(expected.output)'") }

        var shape = BlockShape(attention: attention, ffn: nil, lowRank: [:])
        for (node, op) in block.nodes(of: LinearOp.self) {
            if let (a, _) = op.factors { shape.lowRank[node.name] = block.parameters[a]?.shape[0] ?? 0 }
        }
        if let (node, op) = moe {
            let widths = (0..<op.experts).map { block.parameters[op.expertNames($0).gate]?.shape[0] ?? 0 }
            shape.ffn = .moe(node: node.name, experts: op.experts, topK: op.topK, widths: widths, sharedExpert: op.hasSharedExpert,
                             normalizeTopK: op.normalizeTopK)
        } else if hasMLP {
            shape.ffn = .dense(width: LlamaBlock.gateWidth(of: block) ?? 0)
        }
        return shape
    }

    /// What a node computes, for comparing graphs: name, kind, wiring and the attributes that matter. Dense and
    /// low-rank linears compare equal (only the bias counts).
    static func signature(_ n: Node) -> String {
        var detail: String
        switch n.op {
        case let l as LinearOp: detail = l.bias == nil ? "" : "bias"
        case let r as RMSNormOp: detail = "\(r.weight) eps \(r.epsilon)"
        case let r as RopeOp: detail = "heads \(r.heads) head_dim \(r.headDimensions) \(r.config)"
        case let a as AttentionOp: detail = "heads \(a.heads)/\(a.kvHeads) head_dim \(a.headDimensions) scale \(a.scale) window \(a.window.map(String.init) ?? "none")"
        case let m as MoEOp: detail = "experts \(m.experts) top \(m.topK)"
        default: detail = ""
        }
        return "'\(n.name)' (\(n.kind)\(detail.isEmpty ? "" : " " + detail): \(n.inputs.joined(separator: ", ")) → \(n.outputs.joined(separator: ", ")))"
    }
}

extension Model {
    /// The shape of every block (`BlockShape.recognize` with the model's norm ε and RoPE settings).
    public func blockShapes() throws -> [BlockShape] {
        try blocks.enumerated().map { i, block in
            do { return try BlockShape.recognize(block, epsilon: Float(config.normEpsilon), rope: config.rope) } catch var e as BlockShapeError {
                e.block = i
                throw e
            }
        }
    }
}

/// A block whose graph is not a Llama-family block.
public struct BlockShapeError: Error, CustomStringConvertible {
    /// The block's index, when known.
    public var block: Int?
    /// What differs.
    public let reason: String
    /// An error.
    public init(_ reason: String, block: Int? = nil) {
        self.reason = reason
        self.block = block
    }
    public var description: String { (block.map { "block \($0): " } ?? "") + reason }
}
