#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LancetIR
import LancetTensor

/// The gradient of the language-model loss — the cross-entropy of next-token predictions over the whole
/// vocabulary — at every block's output, and at any value inside a block (the outputs of its linears, for
/// K-FAC's output-gradient factor), by a backward through the head, the final norm and the blocks.
///
/// Memory: one batch's block-boundary activations (`blocks + 1` tensors of `[tokens, hidden]`), one block's
/// forward tape at a time (each block's forward is recomputed from its stored input during the backward), and
/// `logitRows × vocabulary` logits (the head's forward and backward run a few rows at a time, so the
/// `tokens × 49,152` logits of a SmolLM2 window are never all held).
///
///     x₀ = embed(tokens);  x_{b+1} = block_b(x_b)                  keep x₀ … x_n
///     L  = Σ_t −log softmax(head(norm(x_n)))_t[label_t] / normalizer
///     g_n = ∂L/∂x_n  (rows of logits at a time, then the final norm's VJP)
///     for b = n−1 … 0:  tape = block_b(x_b);  g_b = VJP(tape, g_{b+1})   visit(b, x_b, g_{b+1}, …)
public struct ModelGradients {
    /// What the cross-entropy is taken against.
    public enum Labels: Sendable, Equatable {
        /// The next token of the data (the empirical Fisher's gradients).
        case data
        /// A token drawn from the model's own predictive distribution at each position, from a generator seeded
        /// by `seed` and the batch's first window (the "true" Fisher of the LLM Surgeon).
        case sampled(seed: UInt64)
    }

    /// What the backward hands over for one block.
    public struct BlockGradient {
        /// The block's index.
        public let block: Int
        /// The block's input `x_b`, `[tokens, hidden]`.
        public let input: Tensor
        /// ∂L/∂(block output).
        public let outputGradient: Tensor
        /// ∂L/∂(block input).
        public let inputGradient: Tensor
        /// The forward values asked for in `capture` (e.g. the inputs of the linears), by name.
        public let values: [String: Tensor]
        /// ∂L/∂value of the values asked for in `captureGradients` (e.g. the outputs of the linears), by name.
        public let valueGradients: [String: Tensor]
        /// ∂L/∂parameter of every parameter of the block, by local name.
        public let parameterGradients: [String: Tensor]
    }

    /// The model differentiated.
    public let model: Model
    /// The labels of the loss.
    public var labels: Labels = .data
    /// Rows of logits computed at once in the head's forward and backward.
    public var logitRows = 256

    /// Gradients of `model`'s loss.
    public init(model: Model, labels: Labels = .data) {
        self.model = model
        self.labels = labels
    }

    /// Runs the loss and its backward on `windows` (sequences of one length, `[windows][length]`), visiting the
    /// blocks from last to first. The loss is the sum of the next-token NLLs of every window's `length − 1`
    /// predictions divided by `normalizer` (default: their number, the mean NLL); give the number of predictions
    /// of a whole calibration set to make the gradients of its batches add up to that set's gradient.
    /// `firstWindow` is the batch's offset in that set (it seeds sampled labels). Returns the batch's NLL sum.
    @discardableResult
    public func backward(windows: [[Int32]], firstWindow: Int = 0, normalizer: Double? = nil, capture: Set<String> = [],
                         captureGradients: Set<String> = [], visit: (BlockGradient) throws -> Void) throws -> Double {
        guard let length = windows.first?.count, length >= 2 else { throw RuntimeError.emptyInput("a gradient batch (windows of at least 2 tokens)") }
        precondition(windows.allSatisfy { $0.count == length }, "ModelGradients: windows of different lengths")
        let context = ExecutionContext(batch: windows.count, length: length)
        let runner = ModelRunner(model: model)
        // Forward, keeping only the block boundaries.
        var boundaries = [try runner.embed(Array(windows.joined()))]
        for (i, block) in model.blocks.enumerated() {
            boundaries.append(try BlockExecutor.forward(block, index: i, input: boundaries[i], context: context).output)
        }
        let predictions = windows.count * (length - 1)
        let scale = 1 / (normalizer ?? Double(predictions))
        var (nll, gradient) = try headBackward(boundaries.removeLast(), windows: windows, firstWindow: firstWindow, scale: scale)
        for i in model.blocks.indices.reversed() {
            let input = boundaries.removeLast()
            let tape = try BlockExecutor.forward(model.blocks[i], index: i, input: input, context: context, keepValues: true)
            let grads = try BlockExecutor.backward(model.blocks[i], index: i, values: tape.values, outputGradient: gradient, context: context,
                                                   captureGradients: captureGradients)
            try visit(BlockGradient(block: i, input: input, outputGradient: gradient, inputGradient: grads.input,
                                    values: tape.values.filter { capture.contains($0.key) }, valueGradients: grads.values,
                                    parameterGradients: grads.parameters))
            gradient = grads.input
        }
        if nll.isNaN { throw RuntimeError.notANumber("the loss's logits") }
        return nll
    }

    /// The NLL sum of the batch and ∂L/∂x_n, through the head and the final norm, `logitRows` rows at a time.
    func headBackward(_ last: Tensor, windows: [[Int32]], firstWindow: Int, scale: Double) throws -> (Double, Tensor) {
        let runner = ModelRunner(model: model)
        let normed = runner.finalNorm(last)
        let (tokens, hidden) = (normed.shape[0], normed.shape[1])
        let length = windows[0].count
        let head = model.head
        var dNormed = Tensor(zeros: [tokens, hidden])
        var nll = 0.0
        var generator: SeededGenerator?
        if case let .sampled(seed) = labels { generator = SeededGenerator(seed: seed ^ (UInt64(firstWindow) &* 0x9E37_79B9_7F4A_7C15)) }
        var row = 0
        while row < tokens {
            let rows = min(logitRows, tokens - row)
            var logits = runner.logits(normed: normed.slicingRows(row..<(row + rows)))      // [rows, vocabulary]
            let vocabulary = logits.shape[1]
            logits.withUnsafeMutableBufferPointer { lp in
                for r in 0..<rows {
                    let t = row + r, position = t % length
                    let p = lp.baseAddress! + r * vocabulary
                    guard position < length - 1 else {                    // the last token of a window predicts nothing
                        p.update(repeating: 0, count: vocabulary)
                        continue
                    }
                    let lse = logSumExp(p, count: vocabulary)
                    var label = Int(windows[t / length][position + 1])
                    if generator != nil { label = Self.sample(logits: p, count: vocabulary, logSumExp: lse, generator: &generator!) }
                    nll += Double(lse) - Double(p[label])                 // −log softmax(logits)[label]
                    // ∂L/∂logit = (softmax − onehot(label)) · scale
                    softmax(inPlace: p, count: vocabulary)
                    p[label] -= 1
                    let s = Float(scale)
                    for j in 0..<vocabulary { p[j] *= s }
                }
            }
            let dRows = matmul(logits, head)                                                // [rows, hidden]
            dNormed.setRows(from: dRows, at: row)
            row += rows
        }
        // Back through the final norm.
        let norm = RMSNormOp(weight: "final_norm", epsilon: Float(model.config.normEpsilon))
        var unused: [String: Tensor] = [:]
        let dLast = try norm.backward([last], outputs: [normed], outputGradients: [dNormed], parameters: FinalNormLookup(weight: model.finalNorm),
                                      context: ExecutionContext(batch: 1, length: tokens), parameterGradients: &unused)
        return (nll, dLast[0]!)
    }

    /// A draw from softmax(`logits[0..<count]`), whose log-sum-exp is `logSumExp`.
    static func sample(logits: UnsafeMutablePointer<Float>, count: Int, logSumExp: Float, generator: inout SeededGenerator) -> Int {
        let u = generator.nextDouble()
        var cumulative = 0.0
        for j in 0..<count {
            cumulative += Double(expf(logits[j] - logSumExp))
            if u < cumulative { return j }
        }
        return count - 1
    }
}

/// The final norm's weight under the name the `RMSNormOp` of the head backward reads.
private struct FinalNormLookup: ParameterLookup {
    let weight: Tensor
    func parameter(_ name: String) -> Tensor? { name == "final_norm" ? weight : nil }
}
