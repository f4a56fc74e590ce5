import LancetIR
import LancetTensor

/// Autoregressive generation with a KV cache: one prefill of the prompt, then one token per step.
public struct Generator {
    /// The model runner.
    public let runner: ModelRunner
    /// Tokens that stop generation (EOS, end of turn).
    public var stopTokens: Set<Int32>

    /// A generator for `model` (multiplying by its weights in `precision`), stopping at the tokenizer's stop tokens.
    public init(model: Model, precision: WeightPrecision = .f32) {
        runner = ModelRunner(model: model, precision: precision)
        stopTokens = model.tokenizer?.stopTokens ?? []
    }

    /// Generates up to `maxTokens` tokens after `prompt`, calling `onToken` with each new id (return false to stop).
    /// The prompt plus the new tokens must fit `contextLimit` (the model's context length by default).
    /// Throws `RuntimeError.notANumber` when the model's logits hold a NaN (a NaN weight or activation),
    /// rather than emit a token chosen from them.
    @discardableResult
    public func generate(prompt: [Int32], maxTokens: Int, sampler: inout Sampler, contextLimit: Int? = nil,
                         onToken: (Int32) -> Bool = { _ in true }) throws -> [Int32] {
        guard !prompt.isEmpty else { throw RuntimeError.emptyInput("the prompt") }
        let limit = contextLimit ?? runner.model.config.contextLength
        guard prompt.count < limit else { throw RuntimeError.contextTooLong(tokens: prompt.count, limit: limit) }
        let capacity = min(limit, prompt.count + maxTokens)
        let cache = KVCache(capacity: capacity)
        var logits = try runner.nextTokenLogits(prompt, startPosition: 0, cache: cache)
        var out: [Int32] = []
        var position = prompt.count
        while out.count < maxTokens {
            if logits.contains(where: \.isNaN) {
                throw RuntimeError.notANumber("the next-token logits after position \(position - 1)")
            }
            let next = sampler.next(logits)
            out.append(next)
            if stopTokens.contains(next) || !onToken(next) || position + 1 > capacity { break }
            logits = try runner.nextTokenLogits([next], startPosition: position, cache: cache)
            position += 1
        }
        return out
    }
}
