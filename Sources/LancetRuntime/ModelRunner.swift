import LancetIR
import LancetTensor

/// Runs a whole model: embedding, blocks, final norm and output head, for prefill and decoding.
public struct ModelRunner: Sendable {
    /// The model executed.
    public let model: Model
    /// 16-bit copies of the model's matrices that every call multiplies by (nil: the Float weights).
    public let halfWeights: HalfWeights?

    /// A runner for `model` multiplying by its weights in `precision` (Float by default; 16-bit copies are made
    /// once, here).
    public init(model: Model, precision: WeightPrecision = .f32) {
        self.model = model
        halfWeights = precision.halfFormat.map { HalfWeights(model: model, format: $0) }
    }

    /// Embedding rows of `tokens`, `[count, hidden]`. Throws for ids outside the vocabulary.
    public func embed(_ tokens: [Int32]) throws -> Tensor {
        let h = model.config.hiddenSize, v = model.config.vocabularySize
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= v }) {
            throw RuntimeError.tokenOutOfRange(id: Int(bad), vocabulary: v)
        }
        return Tensor(shape: [tokens.count, h]) { out in
            for (r, t) in tokens.enumerated() { model.embedding.copyRow(Int(t), to: out.baseAddress! + r * h) }
        }
    }

    /// The residual stream after every block, for `tokens` laid out as `context` says; `afterBlock` sees the
    /// stream after each block (its index and value) as it is computed.
    public func hiddenStates(_ tokens: [Int32], context: ExecutionContext, afterBlock: ((Int, Tensor) -> Void)? = nil) throws -> Tensor {
        if context.halfWeights == nil { context.halfWeights = halfWeights }
        var x = try embed(tokens)
        for (i, block) in model.blocks.enumerated() {
            x = try BlockExecutor.forward(block, index: i, input: x, context: context).output
            afterBlock?(i, x)
        }
        return x
    }

    /// The final RMS norm of `x`.
    public func finalNorm(_ x: Tensor) -> Tensor {
        var y = Tensor(zeros: x.shape)
        let (rows, dim) = (x.shape[0], x.shape[1])
        x.withUnsafeBufferPointer { xp in model.finalNorm.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            rmsNorm(xp.baseAddress!, weight: wp.baseAddress!, rows: rows, dim: dim, eps: Float(model.config.normEpsilon), out: yp.baseAddress!)
        }}}
        return y
    }

    /// Logits `[rows, vocabulary]` of normed hidden states.
    public func logits(normed x: Tensor) -> Tensor { Linear.apply(x, weight: model.head, half: halfWeights) }

    /// Next-token logits after each of `rows` (row indices into the hidden states), `[rows.count, vocabulary]`.
    public func logits(_ tokens: [Int32], context: ExecutionContext, rows: [Int]? = nil) throws -> Tensor {
        let hidden = try hiddenStates(tokens, context: context)
        let selected = rows.map { r in hidden.gatherRows(r) } ?? hidden
        return logits(normed: finalNorm(selected))
    }

    /// Logits of the last token of a single sequence `tokens`, with an optional KV cache holding the
    /// `startPosition` tokens before them.
    public func nextTokenLogits(_ tokens: [Int32], startPosition: Int = 0, cache: KVCache? = nil) throws -> [Float] {
        let context = ExecutionContext(batch: 1, length: tokens.count, startPosition: startPosition, cache: cache)
        return try logits(tokens, context: context, rows: [tokens.count - 1]).scalars
    }
}

/// Errors from running a model.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int, vocabulary: Int)
    /// A prompt or sequence longer than the context the run allows.
    case contextTooLong(tokens: Int, limit: Int)
    /// An empty input.
    case emptyInput(String)
    /// A computed value that is NaN (from a NaN weight or activation of the model).
    case notANumber(String)

    public var description: String {
        switch self {
        case let .tokenOutOfRange(id, v): "token id \(id) is outside the vocabulary of \(v) tokens"
        case let .contextTooLong(t, l): "\(t) tokens do not fit the context of \(l) tokens"
        case let .emptyInput(what): "\(what) is empty"
        case let .notANumber(what): "\(what) are NaN: a weight or activation of the model is not a number"
        }
    }
}

extension Tensor {
    /// The rows `indices` of a matrix, stacked in that order.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        let c = shape[1]
        return Tensor(shape: [indices.count, c]) { out in
            withUnsafeBufferPointer { src in
                for (r, i) in indices.enumerated() { (out.baseAddress! + r * c).update(from: src.baseAddress! + i * c, count: c) }
            }
        }
    }
}
