import LancetIR
import LancetSurgery
import LancetTensor

/// Per calibration window, the root mean square of every FFN channel's gated activation over the window's prompt (its
/// first `promptTokens` tokens) and over the rest, and the mean energy of the block's output over the rest: what the
/// channel predictors learn from and what the budget allocation weighs. Windows are `length` tokens; a forward call
/// holds whole windows, in order.
public struct PromptContinuationSamples: BlockAnalysis {
    /// Tokens per calibration window.
    public let length: Int
    /// Tokens of each window's prompt.
    public let promptTokens: Int
    /// Tokens at the start of each prompt its statistics leave out (`DynamicFFNOp.sinkTokens`).
    public let sinkTokens: Int
    /// The gated activations (the down projection's input) and the block's output, by value name.
    public let activations: String, output: String

    /// Samples of windows of `length` tokens whose first `promptTokens` are the prompt, for `block`'s dense SwiGLU MLP
    /// (nil when it has none).
    public init?(block: Block, length: Int, promptTokens: Int, sinkTokens: Int = 0) {
        guard let act = block.node("mlp.down")?.inputs.first else { return nil }
        (self.length, self.promptTokens, self.sinkTokens, activations, output) = (length, promptTokens, sinkTokens, act, block.output)
    }

    public var id: String { "prompt-continuation-samples(\(activations), \(output), \(length), \(promptTokens), \(sinkTokens))" }

    public func reads(in block: Block) -> Set<String> { [activations, output] }

    /// The samples, window by window.
    public struct Value: AnalysisValue {
        /// Per window, `rms_prompt(a_c)` for every channel.
        public var prompt: [[Double]] = []
        /// Per window, `rms_rest(a_c)` for every channel.
        public var rest: [[Double]] = []
        /// Per window, the mean of ‖y_t‖² over the block output's rows after the prompt.
        public var outputEnergy: [Double] = []
        /// Window `n`'s channel contributions over its prompt and over the rest: the RMS times the down column's norm.
        public func contributions(window n: Int, columnNorms: [Double]) -> (prompt: [Double], rest: [Double]) {
            (zip(prompt[n], columnNorms).map { $0 * $1 }, zip(rest[n], columnNorms).map { $0 * $1 })
        }

        public mutating func merge(_ other: Value) {
            prompt += other.prompt
            rest += other.rest
            outputEnergy += other.outputEnergy
        }
    }

    public func accumulate(_ value: inout Value?, values: [String: Tensor]) throws {
        guard let a = values[activations], let y = values[output] else {
            throw AnalysisError(id: id, reason: "values '\(activations)' and '\(output)' were not captured")
        }
        guard a.shape[0] % length == 0, promptTokens < length else {
            throw AnalysisError(id: id, reason: "\(a.shape[0]) rows are not whole windows of \(length) tokens with a prompt of \(promptTokens)")
        }
        let unit = [Double](repeating: 1, count: a.shape[1])
        var v = value ?? Value()
        for w in 0..<(a.shape[0] / length) {
            let start = w * length
            v.prompt.append(ChannelContribution.rms(a, rows: (start + min(sinkTokens, promptTokens - 1))..<(start + promptTokens), columnNorms: unit))
            v.rest.append(ChannelContribution.rms(a, rows: (start + promptTokens)..<(start + length), columnNorms: unit))
            let width = y.shape[1]
            let energy = y.withUnsafeBufferPointer { p in
                sumOfSquares(p.baseAddress! + (start + promptTokens) * width, count: (length - promptTokens) * width)
            }
            v.outputEnergy.append(energy / Double(length - promptTokens))
        }
        value = v
    }
}
