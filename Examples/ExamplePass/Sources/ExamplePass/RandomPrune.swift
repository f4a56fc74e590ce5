import Lancet

/// Masks a seeded random fraction of every targeted linear's weights: the floor any real pruning criterion
/// has to beat, and a small complete example of a block pass.
///
/// Each targeted weight loses `round(fraction · count)` of its entries, chosen uniformly without
/// replacement from a generator seeded by the run's seed, the block index and the weight's name, so a run
/// is reproducible and independent of which other weights are targeted. Entries an earlier pass masked
/// stay masked.
///
/// ```yaml
/// stages:
///   - passes:
///       - random-prune:
///           fraction: 0.3
///         targets: ["blocks.*.mlp.*"]
/// ```
public struct RandomPrune: BlockPass {
    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// The fraction of each targeted weight's entries to mask, in [0, 1).
        public var fraction: Double

        /// Options; `fraction` defaults to 0.5.
        public init(fraction: Double = 0.5) {
            self.fraction = fraction
        }
    }

    public static let name = "random-prune"
    public static let summary = "masks a seeded random fraction of each targeted linear (a baseline)"
    public static var defaultOptions: Options { Options() }
    public static var optionHelp: [String: String] {
        ["fraction": "fraction of each targeted weight's entries to mask, in [0, 1)"]
    }

    /// The validated options.
    public let options: Options

    /// A pass; throws when `fraction` is outside [0, 1).
    public init(options: Options) throws {
        guard options.fraction >= 0, options.fraction < 1 else {
            throw PassOptionError("fraction", "must be in [0, 1), got \(options.fraction)")
        }
        self.options = options
    }

    public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
        var targeted = 0, pruned = 0
        for (_, op) in context.linears(in: block) {
            guard let name = op.weight, let weight = block.parameters[name] else { continue }
            let count = weight.count
            var generator = SeededGenerator(seed: Self.seed(context.seed, block: context.blockIndex, parameter: name))
            // A partial Fisher–Yates shuffle picks the indices to drop.
            var order = Array(0..<count)
            let drop = Int((Double(count) * options.fraction).rounded())
            for i in 0..<drop { order.swapAt(i, Int.random(in: i..<count, using: &generator)) }
            var keep = [UInt8](repeating: 1, count: count)
            for i in order[..<drop] { keep[i] = 0 }
            var mask = Mask(shape: weight.shape, keep: keep)
            if let earlier = block.masks[name] { mask = mask.intersection(earlier) }
            block.setMasked(name, weight: weight, mask: mask)
            targeted += count
            pruned += mask.keep.reduce(0) { $0 + (1 - Int($1)) }
        }
        return PassReport(pass: Self.name, block: context.blockIndex, metrics: [
            "sparsity": targeted == 0 ? 0 : Double(pruned) / Double(targeted),
            "pruned_parameters": Double(pruned),
        ])
    }

    /// A per-weight seed: the run's seed mixed with the block index and an FNV-1a hash of the name.
    static func seed(_ run: UInt64, block: Int, parameter: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parameter.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return run ^ h ^ (UInt64(block) &* 0x9e37_79b9_7f4a_7c15)
    }
}
