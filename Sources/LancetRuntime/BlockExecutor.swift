import LancetIR
import LancetTensor

/// Runs a block's graph forwards, and backwards for block-level gradients.
///
/// Forward keeps only the values still needed by later nodes, unless `keepValues` is set, in which case
/// every value is returned (the tape a later `backward` reads).
public enum BlockExecutor {
    /// The outputs of a forward run.
    public struct Result {
        /// The block's output `[tokens, hidden]`.
        public var output: Tensor
        /// Every value of the graph by name with `keepValues` (the tape for `backward`), else the captured ones.
        public var values: [String: Tensor]
    }

    /// Runs `block` on `input` (`[tokens, hidden]`). With `keepValues` every value is returned; otherwise
    /// only those named in `capture`. With `computeOutput` false only the nodes the captured values depend
    /// on run (statistics sweeps that need no block output skip the rest), and `output` is empty.
    ///
    /// `given` supplies values already known for this input (captured by an earlier run of the same nodes): a
    /// node runs only when something wanted depends on it through values not given, so a run resumes from them.
    public static func forward(_ block: Block, index: Int = 0, input: Tensor, context: ExecutionContext, keepValues: Bool = false,
                               capture: Set<String> = [], computeOutput: Bool = true, given: [String: Tensor] = [:]) throws -> Result {
        var values: [String: Tensor] = [block.input: input]
        var captured: [String: Tensor] = [:]
        if capture.contains(block.input) { captured[block.input] = input }
        for (name, v) in given where name != block.input {
            values[name] = v
            if capture.contains(name) { captured[name] = v }
        }
        let lastUse = keepValues ? [:] : lastUses(block)
        let known = Set(given.keys)
        let needed = computeOutput && known.isEmpty ? nil
            : nodesNeeded(for: computeOutput ? capture.union([block.output]) : capture, in: block, given: known)
        context.blockIndex = index
        // One token of one sequence (decoding): a dense SwiGLU feed-forward runs as one fused step.
        let decoding = context.length == 1 && context.batch == 1 && !keepValues && needed == nil
        var i = 0
        while i < block.nodes.count {
            let node = block.nodes[i]
            if let needed, !needed.contains(i) { i += 1; continue }
            context.nodeName = node.name
            let started = context.opSeconds == nil && context.regionSeconds == nil ? nil : ContinuousClock.now
            var ran = i..<(i + 1)
            if decoding, let step = FusedSwiGLUStep(block: block, at: i, lastUse: lastUse, capture: capture, half: context.halfWeights) {
                guard let x = values[step.input] else {
                    throw VerifierError(block: index, node: node.name, reason: "value '\(step.input)' is not available")
                }
                let y = try step.run(x, parameters: block)
                values[step.output] = y
                if capture.contains(step.output) { captured[step.output] = y }
                ran = i..<(i + FusedSwiGLUStep.length)
            } else {
                let inputs = try node.inputs.map { name -> Tensor in
                    guard let v = values[name] else { throw VerifierError(block: index, node: node.name, reason: "value '\(name)' is not available") }
                    return v
                }
                let outputs = try node.op.forward(inputs, parameters: block, context: context)
                for (name, v) in zip(node.outputs, outputs) {
                    values[name] = v
                    if capture.contains(name) { captured[name] = v }
                }
            }
            if let started {
                let d = ContinuousClock.now - started
                let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                context.opSeconds?[ran.count > 1 ? FusedSwiGLUStep.kind : node.kind, default: 0] += seconds
                context.regionSeconds?[node.name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? node.name, default: 0] += seconds
            }
            if !keepValues {
                for j in ran { for name in block.nodes[j].inputs where lastUse[name] == j && name != block.output { values[name] = nil } }
            }
            i = ran.upperBound
        }
        guard computeOutput else { return Result(output: Tensor(zeros: [0, input.shape[1]]), values: captured) }
        guard let out = values[block.output] else {
            throw VerifierError(block: index, node: nil, reason: "output '\(block.output)' was not computed")
        }
        return Result(output: out, values: keepValues ? values : captured)
    }

    /// Indices of the nodes whose outputs `targets` depend on (directly or through other nodes), not through
    /// the `given` values.
    static func nodesNeeded(for targets: Set<String>, in block: Block, given: Set<String> = []) -> Set<Int> {
        var wanted = targets.subtracting(given), needed = Set<Int>()
        for (i, node) in block.nodes.enumerated().reversed() where node.outputs.contains(where: wanted.contains) {
            needed.insert(i)
            wanted.formUnion(node.inputs.filter { !given.contains($0) })
        }
        return needed
    }

    /// The values from which a run can resume computing `block`'s output after the parameters of the nodes
    /// `changed` change: the values the output needs that do not depend on those nodes and that a node depending
    /// on them reads (or the output itself when it does not depend on them). Values a run computed before the change
    /// keep their bits, so `forward(given:)` with them equals a full run; the block's input is never among them.
    public static func resumePoint(afterChanging changed: Set<String>, in block: Block) -> Set<String> {
        let stale = block.valuesDownstream(ofNodes: Set(block.nodes.indices.filter { changed.contains(block.nodes[$0].name) }))
        guard stale.contains(block.output) else { return [block.output] }
        var frontier = Set<String>()
        for i in nodesNeeded(for: [block.output], in: block) where block.nodes[i].outputs.contains(where: stale.contains) {
            frontier.formUnion(block.nodes[i].inputs.filter { !stale.contains($0) })
        }
        frontier.remove(block.input)
        return frontier
    }

    /// The gradients of a loss with respect to a block's input and parameters.
    public struct Gradients {
        /// ∂loss/∂input, `[tokens, hidden]`.
        public var input: Tensor
        /// ∂loss/∂parameter for every parameter on a path to the output, by local name.
        public var parameters: [String: Tensor]
        /// ∂loss/∂value of the values named in `captureGradients`, by name (a value on no path to the output is absent).
        public var values: [String: Tensor] = [:]
    }

    /// Backpropagates `outputGradient` (∂loss/∂output) through the block, reading the tape `values`
    /// of a `forward(keepValues: true)` run on the same context. The gradients of the values named in
    /// `captureGradients` (e.g. the outputs of the linears) are returned too.
    public static func backward(_ block: Block, index: Int = 0, values: [String: Tensor], outputGradient: Tensor,
                                context: ExecutionContext, captureGradients: Set<String> = []) throws -> Gradients {
        var grads: [String: Tensor] = [block.output: outputGradient]
        var parameterGradients: [String: Tensor] = [:]
        var captured: [String: Tensor] = [:]
        if captureGradients.contains(block.output) { captured[block.output] = outputGradient }
        context.blockIndex = index
        for node in block.nodes.reversed() {
            // Every reader of a node's outputs comes after it, so their gradients are complete here.
            for name in node.outputs where captureGradients.contains(name) && name != block.output { captured[name] = grads[name] }
            guard node.outputs.contains(where: { grads[$0] != nil }) else { continue }
            context.nodeName = node.name
            let inputs = node.inputs.map { values[$0]! }
            let outputs = node.outputs.map { values[$0]! }
            let outputGrads = node.outputs.enumerated().map { j, name in grads[name] ?? Tensor(zeros: outputs[j].shape) }
            let inputGrads = try node.op.backward(inputs, outputs: outputs, outputGradients: outputGrads, parameters: block,
                                                  context: context, parameterGradients: &parameterGradients)
            for (name, g) in zip(node.inputs, inputGrads) {
                guard let g else { continue }
                Linear.accumulate(&grads[name], g)
            }
            for name in node.outputs where name != block.input { grads[name] = nil }
        }
        return Gradients(input: grads[block.input] ?? Tensor(zeros: values[block.input]!.shape), parameters: parameterGradients, values: captured)
    }

    /// For every value, the index of the last node that reads it.
    static func lastUses(_ block: Block) -> [String: Int] {
        var last: [String: Int] = [:]
        for (i, node) in block.nodes.enumerated() { for name in node.inputs { last[name] = i } }
        return last
    }
}
