import Foundation
import Lancet

/// Removes the `count` decoder blocks of least *block influence* (ShortGPT: BI = 1 − mean over calibration
/// tokens of cos(block input, block output)), then repairs each gap: the block that follows the removed blocks
/// is fitted so that its output reproduces the output of the original span it now stands for (the removed
/// blocks and itself) on the same inputs, with the recipe's `fit:` method. A small complete example of a
/// calibrated model-scope pass that uses the pass services: a calibration sweep, hidden states, span teachers
/// and the fitting service.
///
/// Gaps at the end of the model have no block after them; the block before takes over instead (its span is
/// itself and the removed blocks after it). Without `fit:` the pass only measures each survivor's span error.
///
/// ```yaml
/// stages:
///   - passes:
///       - shortgpt-remove:
///           count: 8
///         fit: lstsq
/// ```
public struct BlockInfluenceRemoval: ModelPass {
    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// How many blocks to remove; at least one block stays.
        public var count: Int

        /// Options; `count` defaults to 4.
        public init(count: Int = 4) {
            self.count = count
        }
    }

    public static let name = "shortgpt-remove"
    public static let summary = "removes the blocks of least block influence (ShortGPT) and fits the block after each gap to the span it replaces"
    public static var defaultOptions: Options { Options() }
    public static var optionHelp: [String: String] {
        ["count": "blocks to remove (at least one block stays)"]
    }
    /// The survivors are fitted with the recipe's `fit:` settings.
    public static var fitsLocally: Bool { true }

    /// The validated options.
    public let options: Options

    /// A pass; throws when `count` is negative.
    public init(options: Options) throws {
        guard options.count >= 0 else { throw PassOptionError("count", "must be at least 0, got \(options.count)") }
        self.options = options
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        guard options.count < model.blocks.count else {
            throw PassOptionError("count", "must leave at least one of the model's \(model.blocks.count) blocks, got \(options.count)")
        }
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        try validate(model: model, targets: context.targets)
        let blockCount = model.blocks.count
        // 1. Block influence of every block, from one streamed calibration sweep.
        let influence = try Self.blockInfluence(of: model, context: context)
        let removed = Self.leastInfluential(influence, count: options.count)
        var report = PassReport(pass: Self.name, metrics: ["blocks_removed": Double(removed.count)])
        for (i, bi) in influence.enumerated() { report.metrics["bi.\(i)"] = bi }
        report.notes.append("removed blocks " + (removed.isEmpty ? "none" : removed.map(String.init).joined(separator: ", ")))
        guard !removed.isEmpty else { return report }

        // 2. The cut: the kept blocks, in order.
        let kept = (0..<blockCount).filter { !removed.contains($0) }
        model.blocks = kept.map { model.blocks[$0] }

        // 3. The repair: each survivor is fitted to its span of original blocks, on the hidden states that reach
        //    it in the cut model (earlier survivors already fitted), one gap after the other.
        var states = try context.hiddenStates(enteringBlock: 0, of: model)
        var position = 0
        var before: [Double] = [], after: [Double] = [], fitSeconds = 0.0
        let repairs = SpanRepair.plan(removed: removed, blockCount: blockCount)
        for (k, repair) in repairs.enumerated() {
            let index = kept.firstIndex(of: repair.survivor)!
            try context.advance(&states, through: position..<index, of: model)
            position = index
            let teacher = try context.spanOutputs(repair.span, inputs: states)
            var block = model.blocks[index]
            let outcome = try context.fit(&block, index: index, inputs: states, teacher: teacher)
            model.blocks[index] = block
            before.append(outcome.errorBefore)
            after.append(outcome.errorAfter)
            fitSeconds += outcome.seconds
            report.notes.append("block \(repair.survivor) stands for blocks \(repair.span.lowerBound)…\(repair.span.upperBound): span error "
                                + "\(Self.scientific(outcome.errorBefore)) → \(Self.scientific(outcome.errorAfter)) (fit \(outcome.method.rawValue))")
            context.progress(k + 1, repairs.count, "span fits")
        }
        report.fit = context.fit.method.rawValue
        report.errorAfterCut = before.reduce(0, +) / Double(before.count)
        report.errorAfterFit = after.reduce(0, +) / Double(after.count)
        report.fitSeconds = fitSeconds
        return report
    }

    /// BI of every block: 1 − the mean over calibration tokens of the cosine between the block's input and output
    /// rows, accumulated chunk by chunk.
    static func blockInfluence(of model: Model, context: ModelPassContext) throws -> [Double] {
        var cosineSums = [Double](repeating: 0, count: model.blocks.count)
        var tokens = [Int](repeating: 0, count: model.blocks.count)
        try context.sweep(model) { chunk in
            let rows = chunk.input.shape[0], width = chunk.input.shape[1]
            chunk.input.withUnsafeBufferPointer { x in
                chunk.output.withUnsafeBufferPointer { y in
                    for r in 0..<rows {
                        var dot = 0.0, xx = 0.0, yy = 0.0
                        for c in (r * width)..<((r + 1) * width) {
                            dot += Double(x[c]) * Double(y[c])
                            xx += Double(x[c]) * Double(x[c])
                            yy += Double(y[c]) * Double(y[c])
                        }
                        cosineSums[chunk.block] += dot / max((xx * yy).squareRoot(), 1e-30)
                    }
                }
            }
            tokens[chunk.block] += rows
        }
        return zip(cosineSums, tokens).map { 1 - $0 / Double(max($1, 1)) }
    }

    /// The `count` blocks of lowest influence (ties: the lower index), in model order.
    static func leastInfluential(_ influence: [Double], count: Int) -> [Int] {
        let order = influence.indices.sorted { (influence[$0], $0) < (influence[$1], $1) }
        return order.prefix(count).sorted()
    }

    static func scientific(_ x: Double) -> String { String(format: "%.3e", x) }
}
