import Lancet

/// An IR op a plugin introduces, with per-sequence state: `y = x ⊙ g`, where the gate g keeps the `keep`
/// channels of largest mean |x| over the *prompt* and zeroes the others. The choice is made once per sequence at
/// prefill and kept in the sequence's state (beside the KV cache), so every decode step reuses the prompt's
/// channels: a miniature of input-dependent channel selection.
///
/// Without a KV cache (a whole sequence per call: evaluation, calibration) each sequence of the batch chooses from
/// its own rows. The VJP treats the gate as a constant (`dx = dy ⊙ g`). Attributes: `keep`.
public struct PromptChannelGate: Op {
    public static let kind = "prompt-channel-gate"
    /// Channels kept per sequence.
    public var keep: Int

    /// A gate keeping `keep` channels.
    public init(keep: Int) { self.keep = keep }

    public init(attributes: [String: OpAttribute]) throws {
        keep = try attributes.int("keep")
        guard keep >= 1 else { throw OpShapeError("prompt-channel-gate: keep must be at least 1, got \(keep)") }
    }

    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] { ["keep": .int(keep)] }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("prompt-channel-gate takes 1 input, got \(inputs.count)") }
        guard keep <= inputs[0] else { throw OpShapeError("prompt-channel-gate keeps \(keep) of only \(inputs[0]) channels") }
        return inputs
    }

    /// The gates of every sequence of the call: from the state at decode, chosen from the rows otherwise (and stored
    /// at prefill when the sequence has a state).
    func gates(_ x: Tensor, context: ExecutionContext) throws -> [[Float]] {
        if let state = context.sequenceState, context.startPosition > 0 {
            guard let gate = state.value(block: context.blockIndex, node: context.nodeName) as? [Float] else {
                throw OpShapeError("prompt-channel-gate: decoding at position \(context.startPosition) without the prompt's channel choice")
            }
            return [gate]
        }
        let gates = (0..<context.batch).map { b in Self.choose(x, rows: (b * context.length)..<((b + 1) * context.length), keep: keep) }
        if let state = context.sequenceState, context.batch == 1 { state.set(gates[0], block: context.blockIndex, node: context.nodeName) }
        return gates
    }

    /// 1 for the `keep` channels of largest mean |x| over `rows` (ties: the lower channel), 0 for the others.
    static func choose(_ x: Tensor, rows: Range<Int>, keep: Int) -> [Float] {
        let width = x.shape[1]
        var energy = [Double](repeating: 0, count: width)
        x.withUnsafeBufferPointer { p in
            for r in rows { for c in 0..<width { energy[c] += Double(abs(p[r * width + c])) } }
        }
        var gate = [Float](repeating: 0, count: width)
        for c in energy.indices.sorted(by: { (energy[$0], -$0) > (energy[$1], -$1) }).prefix(keep) { gate[c] = 1 }
        return gate
    }

    func apply(_ x: Tensor, gates: [[Float]], rowsPerGate: Int) -> Tensor {
        let width = x.shape[1]
        var y = x
        y.withUnsafeMutableBufferPointer { p in
            for r in 0..<x.shape[0] {
                let gate = gates[min(r / rowsPerGate, gates.count - 1)]
                for c in 0..<width { p[r * width + c] *= gate[c] }
            }
        }
        return y
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        [apply(inputs[0], gates: try gates(inputs[0], context: context), rowsPerGate: context.length)]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        [apply(outputGradients[0], gates: try gates(inputs[0], context: context), rowsPerGate: context.length)]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        OpCost(flops: Double(tokens * inputs[0]))
    }
}
