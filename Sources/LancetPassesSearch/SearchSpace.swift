import LancetIR

/// What the search may choose for each block of a Llama-family model: KV groups kept (whole groups, so grouped-query
/// attention stays consistent), query heads per kept group (the same in every group), and the FFN width in steps of
/// `ffnStep`; with `depth`, a whole sub-layer may go (no groups, no channels). The parameter count of every choice is
/// exact: it equals the sliced block's `parameterCount`.
public struct SearchSpace: Sendable {
    /// One block's dense sizes and the choices open to it.
    public struct BlockSpace: Sendable, Hashable {
        /// KV groups of the dense block.
        public var groups: Int
        /// Query heads per group of the dense block.
        public var headsPerGroup: Int
        /// Dimensions per head.
        public var headDimensions: Int
        /// Whether q, k and v carry biases.
        public var qkvBias: Bool
        /// The residual width.
        public var hidden: Int
        /// FFN channels of the dense block.
        public var channels: Int
        /// Whether the block may change at all (targeted by the recipe).
        public var searched: Bool
        /// The FFN widths open to the block, ascending (the dense width last).
        public var widths: [Int]
        /// The fewest KV groups it may keep (0 with depth changes).
        public var minGroups: Int

        /// The dense block's choice.
        public var dense: BlockChoice { BlockChoice(groups: groups, headsPerGroup: headsPerGroup, channels: channels) }

        /// Exact parameter count of the block sliced to `choice`.
        public func parameters(_ c: BlockChoice) -> Int {
            var total = 0
            if c.groups > 0 {
                let q = c.heads * headDimensions, kv = c.groups * headDimensions
                total += 2 * q * hidden + 2 * kv * hidden + hidden                       // q, o; k, v; attn_norm
                if qkvBias { total += q + 2 * kv }
            }
            if c.channels > 0 { total += 3 * c.channels * hidden + hidden }             // gate, up, down; mlp_norm
            return total
        }

        /// Whether `choice` is open to the block.
        public func allows(_ c: BlockChoice) -> Bool {
            guard searched else { return c == dense }
            return c.groups >= minGroups && c.groups <= groups && (c.groups == 0 || (1...headsPerGroup).contains(c.headsPerGroup))
                && widths.contains(c.channels)
        }
    }

    /// Every block's space.
    public var blocks: [BlockSpace]

    /// The space of `model`: blocks whose attention and MLP linears are all in `searched` may change; FFN widths are
    /// the multiples of `ffnStep` from `minChannels` (rounded up to a step) and the dense width, plus 0 with `depth`.
    /// Throws `SearchError` for a block the search cannot slice.
    public init(model: Model, searched: (Int) -> Bool, ffnStep: Int, minChannels: Int, depth: Bool) throws {
        blocks = try model.blocks.enumerated().map { b, block in
            guard let a = LlamaBlock.attentionSizes(of: block), let f = LlamaBlock.ffnWidth(of: block),
                  let hidden = block.parameters["attn.q.weight"]?.shape[1] else {
                throw SearchError("block \(b) has no attention and MLP of a Llama block (the search needs both to choose their sizes)")
            }
            do { try BlockSlicing.check(block) } catch { throw SearchError("block \(b): \(error)") }
            let first = max(ffnStep, (minChannels + ffnStep - 1) / ffnStep * ffnStep)
            var widths = Array(stride(from: first, to: f, by: ffnStep))
            if depth { widths.insert(0, at: 0) }
            widths.append(f)
            return BlockSpace(groups: a.kvHeads, headsPerGroup: a.heads / a.kvHeads, headDimensions: a.headDimensions, qkvBias: a.qkvBias,
                              hidden: hidden, channels: f, searched: searched(b), widths: widths, minGroups: depth ? 0 : 1)
        }
    }

    /// The dense architecture.
    public var dense: Architecture { blocks.map(\.dense) }

    /// The one block space every block shares in its dense sizes (what a latency table measures), or nil when the
    /// blocks differ or there are none.
    public var uniformBlock: BlockSpace? {
        guard let first = blocks.first, blocks.allSatisfy({ $0.dense == first.dense && $0.hidden == first.hidden }) else { return nil }
        return first
    }

    /// The parameters of `architecture`'s blocks.
    public func parameters(_ architecture: Architecture) -> Int {
        zip(blocks, architecture).reduce(0) { $0 + $1.0.parameters($1.1) }
    }

    /// Whether every block's choice is open to it.
    public func allows(_ architecture: Architecture) -> Bool {
        architecture.count == blocks.count && zip(blocks, architecture).allSatisfy { $0.allows($1) }
    }
}

/// A search that cannot run on this model or with these options.
public struct SearchError: Error, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}
