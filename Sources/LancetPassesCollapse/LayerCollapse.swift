import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// LaCo (Layer Collapse, Yang et al. 2024): from the top of the model down, tries merging the `merge` − 1 blocks
/// after block l into block l (`LayerMerge`, θ_l + Σ_k (θ_{l+k} − θ_l)); the merge is kept while the similarity of
/// the final hidden states with and without it (per calibration window, the cosine of the flattened states; the
/// mean over windows) stays above `threshold`, then l moves `interval` blocks down; a rejected merge moves l one
/// block down. It stops when `layers` blocks are gone (the last merge takes only as many as remain) or l passes
/// `lowest`. Then every merged block is fitted with the recipe's `fit:` to the output of the original span it
/// stands for (span teacher).
///
/// Defaults are the paper's setting for its 7B models as Lancet reads it: 4 blocks per merge, interval 2,
/// threshold 0.65, over every block; the similarity uses all calibration windows unless `samples` says fewer
/// (the paper uses a handful of short sentences). Every trial's similarity goes into the report
/// (`similarity.<l>`, original block numbering of the merge base).
///
/// ```yaml
/// - laco: {layers: 8}
///   fit: lstsq
/// - laco: {layers: 4, merge: 3, interval: 1, threshold: 0.5, samples: 8}
/// ```
public struct LayerCollapsePass: ModelPass {
    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// Blocks to remove in all.
        public var layers = 8
        /// Blocks combined by one merge, the base included (the paper's C).
        public var merge = 4
        /// Blocks the merge base moves down after a kept merge (the paper's I).
        public var interval = 2
        /// The least final-state similarity a kept merge may leave (the paper's T).
        public var threshold = 0.65
        /// The lowest block a merge may start at.
        public var lowest = 0
        /// The highest block a merge may reach (default: the last block).
        public var highest: Int?
        /// Calibration windows the similarity is measured on (default: all).
        public var samples: Int?

        /// Options with defaults.
        public init(layers: Int = 8, merge: Int = 4, interval: Int = 2, threshold: Double = 0.65, lowest: Int = 0, highest: Int? = nil,
                    samples: Int? = nil) {
            self.layers = layers
            self.merge = merge
            self.interval = interval
            self.threshold = threshold
            self.lowest = lowest
            self.highest = highest
            self.samples = samples
        }
    }

    public static let name = "laco"
    public static let summary = "LaCo: merge runs of blocks into one by parameter differences while the final hidden states stay similar, then fit each merged block to its span."
    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "layers": "blocks to remove in all",
        "merge": "blocks combined by one merge, the base included (C)",
        "interval": "blocks the merge base moves down after a kept merge (I)",
        "threshold": "least cosine similarity of the final hidden states a kept merge may leave (T)",
        "lowest": "lowest block a merge may start at",
        "highest": "highest block a merge may reach (default: the last)",
        "samples": "calibration windows the similarity is measured on (default: all)",
    ]
    /// The merged blocks are fitted with the recipe's `fit:`.
    public static var fitsLocally: Bool { true }

    /// The validated options.
    public let options: Options

    /// A pass; throws `PassOptionError` for a negative `layers`, `merge` below 2, `interval` below 1, a threshold
    /// outside [−1, 1], a negative `lowest` or `samples` below 1.
    public init(options: Options) throws {
        guard options.layers >= 0 else { throw PassOptionError("layers", "must be at least 0, got \(options.layers)") }
        guard options.merge >= 2 else { throw PassOptionError("merge", "must be at least 2 (a base and one block), got \(options.merge)") }
        guard options.interval >= 1 else { throw PassOptionError("interval", "must be at least 1, got \(options.interval)") }
        guard options.threshold >= -1 && options.threshold <= 1 else { throw PassOptionError("threshold", "must be in [-1, 1], got \(options.threshold)") }
        guard options.lowest >= 0 else { throw PassOptionError("lowest", "must be at least 0, got \(options.lowest)") }
        if let s = options.samples, s < 1 { throw PassOptionError("samples", "must be at least 1, got \(s)") }
        self.options = options
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        let n = model.blocks.count
        let highest = options.highest ?? n - 1
        guard highest < n, highest > options.lowest else {
            throw PassOptionError(options.highest != nil ? "highest" : "lowest",
                                  "the merge range \(options.lowest)…\(highest) must hold at least two of the model's blocks 0…\(n - 1)")
        }
        guard options.layers <= highest - options.lowest else {
            throw PassOptionError("layers", "\(options.layers) blocks cannot go from the merge range \(options.lowest)…\(highest) (at most \(highest - options.lowest))")
        }
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        try validate(model: model, targets: context.targets)
        var report = PassReport(pass: Self.name, metrics: [:])
        var spans = model.blocks.indices.map { $0...$0 }
        let highest = options.highest ?? model.blocks.count - 1
        var removed = 0
        if options.layers > 0 {
            let samples = min(options.samples ?? context.windowCount, context.windowCount)
            let reference = try FinalStates(of: context.original, windows: samples, context: context)
            // l indexes the current model; blocks below the highest merge base are never touched, so the
            // current index of an original block below it is its original index.
            var l = max(highest - (options.merge - 1), options.lowest)
            var trials = 0
            while l >= options.lowest && removed < options.layers {
                let top = spans.lastIndex { $0.upperBound <= highest } ?? model.blocks.count - 1
                let m = min(options.merge - 1, options.layers - removed, top - l)
                guard m > 0 else { l -= 1; continue }
                var candidate = model
                candidate.blocks[l] = try LayerMerge.merge(model.blocks[l], index: l, with: Array(model.blocks[(l + 1)...(l + m)]))
                candidate.blocks.removeSubrange((l + 1)...(l + m))
                let similarity = try FinalStates(of: candidate, windows: samples, context: context).similarity(to: reference)
                trials += 1
                report.metrics["similarity.\(spans[l].lowerBound)"] = similarity
                let span = spans[l].lowerBound...spans[l + m].upperBound
                if similarity > options.threshold {
                    model = candidate
                    spans[l] = span
                    spans.removeSubrange((l + 1)...(l + m))
                    removed += m
                    report.notes.append(String(format: "merged original blocks %d…%d into one (similarity %.4f)", span.lowerBound, span.upperBound, similarity))
                    l -= options.interval
                } else {
                    context.log(String(format: "laco: merging original blocks %d…%d leaves similarity %.4f ≤ %.4f; not kept", span.lowerBound,
                                       span.upperBound, similarity, options.threshold))
                    l -= 1
                }
                context.progress(removed, options.layers, "laco merges (\(trials) tried)")
            }
            report.metrics["trials"] = Double(trials)
        }
        report.metrics["blocks_removed"] = Double(removed)
        if removed < options.layers {
            report.notes.append("stopped after removing \(removed) of \(options.layers) blocks: no further merge kept the similarity above \(options.threshold)")
        }
        let standIns = spans.enumerated().filter { $0.element.count > 1 }.map { SpanRefit.StandIn(index: $0.offset, span: $0.element) }
        if !standIns.isEmpty { report.record(try SpanRefit.fit(standIns, in: &model, context: context), fit: context.fit) }
        return report
    }
}
