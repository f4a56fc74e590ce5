import LancetIR
import LancetSurgery
import LancetTensor

/// Removes whole decoder blocks, chosen on calibration data, then repairs each gap with the recipe's `fit:`: the
/// block after the removed ones (or, at the end of the model, the one before) is fitted so that its output
/// reproduces the output of the span of original blocks it now stands for, on the same inputs (span teacher).
///
/// Methods (`method`):
/// - `block-influence` (ShortGPT): BI_i = 1 − mean over calibration tokens of cos(block input, block output);
///   the `count` blocks of lowest BI go (ties: the lower index).
/// - `angular-span` ("The Unreasonable Ineffectiveness of the Deeper Layers"): for n = `count`, the contiguous span
///   ℓ…ℓ+n−1 whose input and output hidden states are closest, d(ℓ) = mean over tokens of arccos(cos(x_ℓ, x_{ℓ+n}))/π,
///   goes (ties: the lower ℓ).
/// - `blocks`: an explicit list (any method; no scores are measured).
///
/// Every score goes into the report (`score.<i>`: BI of block i, or the angular distance of the span starting at
/// i), with the blocks removed and each repair's span error before and after the fit.
///
/// ```yaml
/// - remove-layers: {method: block-influence, count: 8}
///   fit: lstsq
/// - remove-layers: {method: angular-span, count: 4}
/// - remove-layers: {blocks: [3, 4]}
///   fit: {method: regional, steps: 10}
/// ```
public struct RemoveLayersPass: ModelPass {
    /// How the blocks to remove are chosen.
    public enum Method: String, Sendable {
        case blockInfluence = "block-influence"
        case angularSpan = "angular-span"
    }

    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// `block-influence` or `angular-span`.
        public var method = "block-influence"
        /// How many blocks to remove (at least one stays).
        public var count = 1
        /// The share of blocks to remove instead of `count` (rounded to the nearest whole block).
        public var ratio: Double?
        /// Explicit block indices to remove instead of choosing them.
        public var blocks: [Int]?

        /// Options with defaults.
        public init(method: String = "block-influence", count: Int = 1, ratio: Double? = nil, blocks: [Int]? = nil) {
            self.method = method
            self.count = count
            self.ratio = ratio
            self.blocks = blocks
        }
    }

    public static let name = "remove-layers"
    public static let summary = "Remove whole blocks by block influence (ShortGPT) or the closest angular span, then fit the block after each gap to the span it replaces."
    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "method": "block-influence: remove the blocks of least 1 − cos(input, output); angular-span: the contiguous span whose input and output are closest",
        "count": "blocks to remove (at least one stays)",
        "ratio": "share of the model's blocks to remove, instead of count",
        "blocks": "explicit block indices to remove, instead of choosing them",
    ]
    /// The survivors are fitted with the recipe's `fit:`.
    public static var fitsLocally: Bool { true }

    /// The validated options.
    public let options: Options
    /// The method.
    public let method: Method

    /// A pass; throws `PassOptionError` for an unknown method, a negative count, a ratio outside [0, 1), both
    /// `ratio` and `blocks`, or a duplicated block.
    public init(options: Options) throws {
        guard let method = Method(rawValue: options.method) else {
            throw PassOptionError("method", "must be block-influence or angular-span, got '\(options.method)'")
        }
        guard options.count >= 0 else { throw PassOptionError("count", "must be at least 0, got \(options.count)") }
        if let r = options.ratio, !(r >= 0 && r < 1) { throw PassOptionError("ratio", "must be in [0, 1), got \(r)") }
        if options.ratio != nil && options.blocks != nil { throw PassOptionError("blocks", "give blocks or ratio, not both") }
        if let b = options.blocks, Set(b).count != b.count { throw PassOptionError("blocks", "lists a block twice: \(b)") }
        self.options = options
        self.method = method
    }

    /// How many blocks go from a model of `blockCount`.
    func removalCount(blockCount: Int) -> Int {
        if let b = options.blocks { return b.count }
        if let r = options.ratio { return Int((r * Double(blockCount)).rounded()) }
        return options.count
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        let n = model.blocks.count
        if let b = options.blocks, let bad = b.first(where: { !(0..<n).contains($0) }) {
            throw PassOptionError("blocks", "block \(bad) is not in the model's blocks 0…\(n - 1)")
        }
        let k = removalCount(blockCount: n)
        guard k < n else { throw PassOptionError(options.blocks != nil ? "blocks" : options.ratio != nil ? "ratio" : "count",
                                                 "must leave at least one of the model's \(n) blocks (removes \(k))") }
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        try validate(model: model, targets: context.targets)
        let blockCount = model.blocks.count
        let k = removalCount(blockCount: blockCount)
        var report = PassReport(pass: Self.name, metrics: ["blocks_removed": Double(k)])
        var removed: [Int]
        if let explicit = options.blocks {
            removed = explicit.sorted()
        } else if k == 0 {
            removed = []
        } else {
            let scores: [Double]
            switch method {
            case .blockInfluence:
                scores = try LayerScores.blockInfluence(of: model, context: context)
                removed = LayerScores.lowest(scores, count: k)
            case .angularSpan:
                scores = try LayerScores.angularDistances(of: model, span: k, context: context)
                let start = LayerScores.lowest(scores, count: 1)[0]
                removed = Array(start..<(start + k))
            }
            for (i, s) in scores.enumerated() { report.metrics["score.\(i)"] = s }
        }
        report.notes.append("removed blocks " + (removed.isEmpty ? "none" : removed.map(String.init).joined(separator: ", ")))
        guard !removed.isEmpty else { return report }
        report.record(try BlockRemoval.removeAndRepair(removed, from: &model, context: context), fit: context.fit)
        return report
    }
}
