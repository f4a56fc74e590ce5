import Foundation
import LancetIR
import LancetRuntime
import LancetTensor

/// Perplexity by a `PerplexityProtocol`: the token stream cut into non-overlapping windows of `context` tokens
/// from token 0 (a trailing partial window is dropped), each window run from an empty context, the next-token
/// negative log-likelihood averaged over the scored predictions of each window, and `ppl = exp(mean of the
/// window means)`. The papers' protocol (the default) scores every prediction; llama.cpp's scores those from
/// position context/2 on and places BOS first in every window when the tokenizer adds BOS.
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
        /// The protocol.
        public var evaluationProtocol: PerplexityProtocol
        /// Tokens per window.
        public var context: Int
        /// The first position of each window whose prediction was scored.
        public var scoreFrom: Int
        /// The token placed first in every window (llama.cpp's BOS), if any.
        public var windowStartToken: Int32?

        /// One line naming the protocol, the scored positions and what starts a window.
        public var protocolSummary: String {
            evaluationProtocol.summary(context: context, scoreFrom: scoreFrom, windowStartToken: windowStartToken)
        }

        enum CodingKeys: String, CodingKey {
            case perplexity, windows, tokens, seconds, context
            case tokensPerSecond = "tokens_per_second"
            case windowNLL = "window_nll"
            case evaluationProtocol = "protocol", scoreFrom = "score_from", windowStartToken = "window_start_token"
        }
    }

    /// The model runner.
    public let runner: ModelRunner
    /// Tokens per window.
    public let context: Int
    /// Rows of logits computed at once (bounds memory: rows × vocabulary floats).
    public var logitRows = 256
    /// The protocol.
    public let evaluationProtocol: PerplexityProtocol
    /// The first position of each window whose prediction is scored (0: every prediction); the protocol's by default.
    public var scoreFrom: Int
    /// The token placed first in every window before running it (llama.cpp's BOS), nil: windows run as cut.
    public var windowStartToken: Int32?

    /// An evaluator of `model` with windows of `context` tokens by `evaluationProtocol`, multiplying by its
    /// weights in `precision`. The protocol sets `scoreFrom`, and `windowStartToken` from the model's tokenizer.
    public init(model: Model, context: Int, protocol evaluationProtocol: PerplexityProtocol = .papers, precision: WeightPrecision = .f32) {
        self.runner = ModelRunner(model: model, precision: precision)
        self.context = context
        self.evaluationProtocol = evaluationProtocol
        self.scoreFrom = evaluationProtocol.scoreFrom(context: context)
        self.windowStartToken = evaluationProtocol.windowStartToken(tokenizer: model.tokenizer)
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
            var window = Array(tokens[(w * context)..<((w + 1) * context)])
            if let start = windowStartToken { window[0] = start }   // an input only: token 0 is never a target
            nll.append(try windowNLL(window))
            progress(w + 1, windows)
        }
        let seconds = Date().timeIntervalSince(start)
        let mean = nll.reduce(0, +) / Double(nll.count)
        return Result(perplexity: Foundation.exp(mean), windows: windows, tokens: windows * (context - 1 - scoreFrom), seconds: seconds,
                      tokensPerSecond: Double(windows * context) / seconds, windowNLL: nll, evaluationProtocol: evaluationProtocol,
                      context: context, scoreFrom: scoreFrom, windowStartToken: windowStartToken)
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
