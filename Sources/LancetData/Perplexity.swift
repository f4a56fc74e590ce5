import Foundation
import LancetIR
import LancetRuntime
import LancetTensor

/// Perplexity as the Wanda/SparseGPT papers measure it: the token stream cut into non-overlapping
/// windows of `context` tokens from token 0 (a trailing partial window is dropped), each window run from
/// an empty context, the next-token negative log-likelihood averaged over every predicted position of
/// every window, and `ppl = exp(mean)`. With `scoreFrom` = context/2 it is llama.cpp's `llama-perplexity`
/// instead (for a tokenizer that adds no BOS, as SmolLM2's): the same windows ("chunks"), only the predictions
/// made at positions context/2 … context−2 of each scored.
public struct PerplexityEvaluator {
    /// The result of an evaluation.
    public struct Result: Sendable, Codable {
        /// exp of the mean NLL.
        public var perplexity: Double
        /// Windows evaluated.
        public var windows: Int
        /// Tokens predicted (windows × (context − 1 − scoreFrom)).
        public var tokens: Int
        /// Wall time of the forward passes.
        public var seconds: Double
        /// Window tokens processed per second.
        public var tokensPerSecond: Double
        /// Mean NLL of each window.
        public var windowNLL: [Double]

        enum CodingKeys: String, CodingKey {
            case perplexity, windows, tokens, seconds
            case tokensPerSecond = "tokens_per_second"
            case windowNLL = "window_nll"
        }
    }

    /// The model runner.
    public let runner: ModelRunner
    /// Tokens per window.
    public let context: Int
    /// Rows of logits computed at once (bounds memory: rows × vocabulary floats).
    public var logitRows = 256
    /// The first position of each window whose prediction is scored (0: every prediction).
    public var scoreFrom = 0

    /// An evaluator of `model` with windows of `context` tokens, multiplying by its weights in `precision`.
    public init(model: Model, context: Int, precision: WeightPrecision = .f32) {
        self.runner = ModelRunner(model: model, precision: precision)
        self.context = context
    }

    /// Evaluates up to `maxWindows` windows of `tokens`, calling `progress(done, total)` after each window.
    public func evaluate(tokens: [Int32], maxWindows: Int? = nil, progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        guard context >= 2 else { throw RuntimeError.contextTooLong(tokens: context, limit: 2) }
        precondition(scoreFrom >= 0 && scoreFrom < context - 1, "PerplexityEvaluator: scoreFrom \(scoreFrom) of a \(context)-token window")
        let available = tokens.count / context
        guard available > 0 else {
            throw RuntimeError.emptyInput("the evaluation text (\(tokens.count) tokens, fewer than one window of \(context))")
        }
        let windows = min(available, maxWindows ?? available)
        var nll: [Double] = []
        let start = Date()
        for w in 0..<windows {
            let window = Array(tokens[(w * context)..<((w + 1) * context)])
            nll.append(try windowNLL(window))
            progress(w + 1, windows)
        }
        let seconds = Date().timeIntervalSince(start)
        let mean = nll.reduce(0, +) / Double(nll.count)
        return Result(perplexity: Foundation.exp(mean), windows: windows, tokens: windows * (context - 1 - scoreFrom), seconds: seconds,
                      tokensPerSecond: Double(windows * context) / seconds, windowNLL: nll)
    }

    /// Mean next-token NLL over the predictions of one window made at positions `scoreFrom` onwards.
    public func windowNLL(_ window: [Int32]) throws -> Double {
        let ctx = ExecutionContext(batch: 1, length: window.count)
        let hidden = runner.finalNorm(try runner.hiddenStates(window, context: ctx))
        return nll(normedHidden: hidden, targets: window, from: scoreFrom)
    }

    /// Sum-of-NLL helper: mean NLL of predicting `targets[i + 1]` from row `i` of `normedHidden`, for rows `from`
    /// onwards. A NaN logit anywhere in a row makes that row's NLL, and so the mean, NaN: nothing is skipped.
    public func nll(normedHidden hidden: Tensor, targets: [Int32], from first: Int = 0) -> Double {
        let predictions = targets.count - 1
        var total = 0.0
        var row = first
        while row < predictions {
            let rows = min(logitRows, predictions - row)
            let logits = runner.logits(normed: hidden.slicingRows(row..<(row + rows)))
            let v = logits.shape[1]
            logits.withUnsafeBufferPointer { lp in
                for r in 0..<rows {
                    let base = lp.baseAddress! + r * v
                    total += Double(logSumExp(base, count: v) - base[Int(targets[row + r + 1])])
                }
            }
            row += rows
        }
        return total / Double(predictions - first)
    }
}
