import LancetIR

/// One block's shape in an architecture search: how many KV groups (each a KV head with its query heads) it keeps,
/// how many query heads each kept group keeps, and how many FFN channels. `groups == 0` removes the attention
/// sub-layer, `channels == 0` the MLP (only when the search space allows depth changes).
public struct BlockChoice: Hashable, Codable, Sendable, CustomStringConvertible {
    /// KV groups kept.
    public var groups: Int
    /// Query heads kept per kept group (0 when `groups` is 0).
    public var headsPerGroup: Int
    /// FFN channels kept.
    public var channels: Int

    /// A choice.
    public init(groups: Int, headsPerGroup: Int, channels: Int) {
        self.groups = groups
        self.headsPerGroup = groups == 0 ? 0 : headsPerGroup
        self.channels = channels
    }

    /// Query heads kept.
    public var heads: Int { groups * headsPerGroup }

    /// `3×3h/1536`: groups × heads per group, then channels.
    public var description: String { "\(groups)×\(headsPerGroup)h/\(channels)" }

    enum CodingKeys: String, CodingKey {
        case groups, channels
        case headsPerGroup = "heads_per_group"
    }
}

/// A candidate architecture: one `BlockChoice` per block of the model.
public typealias Architecture = [BlockChoice]

extension BlockChoice {
    /// What a block's shapes amount to: its KV heads as groups, its query heads per KV head, its FFN width (0 for a
    /// sub-layer the block does not have); nil when its query heads are not a whole number per KV head.
    public init?(of block: Block) {
        let attention = LlamaBlock.attentionSizes(of: block)
        let groups = attention?.kvHeads ?? 0, heads = attention?.heads ?? 0
        guard groups == 0 || heads % groups == 0 else { return nil }
        self.init(groups: groups, headsPerGroup: groups == 0 ? 0 : heads / groups, channels: LlamaBlock.ffnWidth(of: block) ?? 0)
    }
}

extension Model {
    /// The model's architecture, block by block (`BlockChoice(of:)`); nil when a block has none.
    public var searchArchitecture: Architecture? {
        let choices = blocks.compactMap(BlockChoice.init(of:))
        return choices.count == blocks.count ? choices : nil
    }
}
