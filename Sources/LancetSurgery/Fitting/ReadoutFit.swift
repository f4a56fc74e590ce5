import LancetIR
import LancetRuntime
import LancetTensor

/// Closed-form least squares of a `LinearReadoutOp`'s readout (a mixture's down projections) after a cut: with the
/// op's features Z(x') on its inputs in the cut block and Y the value it writes in the dense block on the same
/// block inputs (the dense MLP's output),
///
///     min_W ‖Z Wᵀ − Y‖² + λ‖W − W_cut‖²   ⇒   (ZᵀZ + λI) Wᵀ = ZᵀY + λ W_cutᵀ,
///
/// λ = damping · mean(diag ZᵀZ), all readout parameters at once (for a mixture: every expert's down projection on
/// the tokens routed to it, weighted as the router weighs them, and the shared expert's on every token).
enum ReadoutFit {
    /// A readout to refit: the node, its input value and the value it writes (present in both blocks).
    struct Target {
        let node: String
        let input: String
        let output: String
    }

    /// The readout ops of `cut` that the cut introduced or changed and whose output the dense block also writes.
    static func targets(cut: Block, dense: Block) -> [Target] {
        let denseValues = Set(dense.nodes.flatMap(\.outputs))
        return cut.nodes.compactMap { node in
            guard let op = node.op as? LinearReadoutOp, node.inputs.count == 1, node.outputs.count == 1,
                  denseValues.contains(node.outputs[0]) else { return nil }
            let unchanged = dense.node(node.name).map { twin in
                twin.op.parameterNames == op.parameterNames && op.parameterNames.allSatisfy { cut.parameters[$0] == dense.parameters[$0] }
            } ?? false
            return unchanged ? nil : Target(node: node.name, input: node.inputs[0], output: node.outputs[0])
        }
    }

    /// The normal equations of one target, accumulated call by call.
    struct Statistics {
        var gram: Tensor?        // ZᵀZ
        var cross: Tensor?       // ZᵀY
        var energy = 0.0         // ‖Y‖²

        mutating func add(features z: Tensor, target y: Tensor) {
            if gram == nil { gram = Tensor(zeros: [z.shape[1], z.shape[1]]) }
            accumulateGram(z, into: &gram!)
            Linear.accumulate(&cross, matmul(z, y, transposeA: true))
            energy += y.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
        }
    }

    /// Refits `target`'s readout in `block` from its statistics; returns ‖ZWᵀ − Y‖² / ‖Y‖² before and after.
    static func fit(_ block: inout Block, target: Target, statistics s: Statistics, damping: Double) throws -> (before: Double, after: Double) {
        guard let op = block.node(target.node)?.op as? LinearReadoutOp, let gram = s.gram, let cross = s.cross, s.energy > 0 else {
            return (0, 0)
        }
        let names = op.readoutParameters
        let parts = names.map { block.parameters[$0]! }
        let w = Tensor.concatenatingColumns(parts)                                    // [out, Σ columns]
        let before = LeastSquaresFit.objective(w, gram, cross) + s.energy
        let fitted = try LeastSquaresFit.solveRows(w, mask: nil, gram: gram, rhs: cross, damping: damping)
        let after = LeastSquaresFit.objective(fitted, gram, cross) + s.energy
        var column = 0
        for (name, part) in zip(names, parts) {
            block.parameters[name] = BlockSlicing.gather(fitted, columns: Array(column..<(column + part.shape[1])))
            column += part.shape[1]
        }
        return (before / s.energy, after / s.energy)
    }
}
