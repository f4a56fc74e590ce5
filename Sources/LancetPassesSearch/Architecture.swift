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
