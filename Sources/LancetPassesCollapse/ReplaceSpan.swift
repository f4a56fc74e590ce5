import Foundation
import LancetIR
import LancetSurgery
import LancetTensor

/// LLM-Streamline's idea with calibration data only: a contiguous span of `count` blocks is replaced by one
/// lightweight block fitted, with the recipe's `fit:`, to reproduce the span's output on the same inputs (span
/// teacher). The replacement (`kind: ffn`) is a block without attention: the pre-norm SwiGLU MLP of the span's
/// last block, y = x + mlp(rmsnorm(x)); lstsq refits its down projection in closed form, regional fits all of it.
///
/// The span starts at `start`, or, without it, where the hidden states entering and leaving the span are closest
/// in angular distance ("The Unreasonable Ineffectiveness of the Deeper Layers"; LLM-Streamline picks its span
/// by the same kind of input–output similarity); every candidate start's distance goes into the report
/// (`score.<i>`). GGUF exports write the model as `deci` (the replacement has no attention); the Hugging Face
/// Llama format cannot hold such a block.
///
/// ```yaml
/// - replace-span: {count: 8}
///   fit: lstsq
/// - replace-span: {count: 4, start: 6}
///   fit: {method: regional, steps: 10}
/// ```
public struct ReplaceSpanPass: ModelPass {
    /// The options.
    public struct Options: Codable, Sendable, Equatable {
        /// Blocks in the span replaced.
        public var count = 8
        /// The span's first block (default: the span of least angular distance).
        public var start: Int?
        /// The replacement: `ffn` (an attention-free MLP block).
        public var kind = "ffn"

        /// Options with defaults.
        public init(count: Int = 8, start: Int? = nil, kind: String = "ffn") {
            self.count = count
            self.start = start
            self.kind = kind
        }
    }

    public static let name = "replace-span"
    public static let summary = "Replace a contiguous span of blocks by one attention-free MLP block fitted to the span's output."
    public static var defaultOptions: Options { Options() }
    public static let optionHelp = [
        "count": "blocks in the span replaced",
        "start": "the span's first block (default: the span whose input and output are closest in angle)",
        "kind": "the replacement: ffn (an attention-free SwiGLU MLP block, initialised from the span's last block)",
    ]
    /// The replacement is fitted with the recipe's `fit:`.
    public static var fitsLocally: Bool { true }

    /// The validated options.
    public let options: Options

    /// A pass; throws `PassOptionError` for a count below 1, a negative start or a kind other than `ffn`.
    public init(options: Options) throws {
        guard options.count >= 1 else { throw PassOptionError("count", "must be at least 1, got \(options.count)") }
        if let s = options.start, s < 0 { throw PassOptionError("start", "must be at least 0, got \(s)") }
        guard options.kind == "ffn" else { throw PassOptionError("kind", "must be ffn (an attention-free MLP block), got '\(options.kind)'") }
        self.options = options
    }

    public func validate(model: Model, targets: TargetSelection) throws {
        let n = model.blocks.count
        guard options.count <= n else { throw PassOptionError("count", "the model has only \(n) blocks, cannot replace \(options.count)") }
        if let s = options.start, s + options.count > n {
            throw PassOptionError("start", "the span \(s)…\(s + options.count - 1) runs past the model's last block \(n - 1)")
        }
    }

    public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
        try validate(model: model, targets: context.targets)
        var report = PassReport(pass: Self.name, metrics: ["blocks_replaced": Double(options.count)])
        let start: Int
        if let s = options.start {
            start = s
        } else {
            let scores = try LayerScores.angularDistances(of: model, span: options.count, context: context)
            for (i, s) in scores.enumerated() { report.metrics["score.\(i)"] = s }
            start = LayerScores.lowest(scores, count: 1)[0]
        }
        let span = start...(start + options.count - 1)
        model.blocks.replaceSubrange(span, with: [try Self.replacement(for: model.blocks[span.upperBound], index: span.upperBound, config: model.config)])
        report.notes.append("replaced blocks \(span.lowerBound)…\(span.upperBound) by one attention-free MLP block (from block \(span.upperBound)'s MLP)")
        report.record(try SpanRefit.fit([SpanRefit.StandIn(index: start, span: span)], in: &model, context: context), fit: context.fit)
        return report
    }

    /// An attention-free block holding `block`'s MLP (norm, gate, up, down), or an error when it has no dense MLP.
    static func replacement(for block: Block, index: Int, config: ModelConfig) throws -> Block {
        let names = [BlockSchema.mlpNorm] + BlockSchema.mlpLinears.map(BlockSchema.weight)
        var parameters: [String: Tensor] = [:]
        for name in names {
            guard let t = block.parameters[name] else {
                throw PassOptionError("count", "block \(index) has no dense '\(name)' to start the replacement MLP from")
            }
            parameters[name] = t
        }
        return LlamaBlock.make(attention: nil, hasMLP: true, epsilon: Float(config.normEpsilon), rope: config.rope, parameters: parameters)
    }
}
