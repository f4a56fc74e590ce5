import LancetIR
import LancetTensor

/// Weight reformation (Shen et al., "Search for Efficient Large Language Models", NeurIPS 2024, §3.4): the weights a
/// cut keeps are re-solved so that the layer reproduces the dense layer's output from the inputs it still reads, the
/// omitted weights' contribution folded into the inherited ones. For a linear with dense weight W (`[out, in]`), the
/// dense layer's input X (`[tokens, in]`, G = XᵀX) and a mask M of the kept entries:
///
///     min_Ŵ ‖X Ŵᵀ − X Wᵀ‖²   subject to   Ŵ ⊙ (1 − M) = 0
///
/// solved as the paper does, by ADMM on Ŵ = Z with Z constrained to the mask (ρ the penalty):
///
///     Ŵ_{k+1} = (W G + ρ (Z_k − U_k)) (G + ρI)⁻¹      (a ridge regression towards Z − U)
///     Z_{k+1} = (Ŵ_{k+1} + U_k) ⊙ M                     (the projection onto the mask)
///     U_{k+1} = U_k + Ŵ_{k+1} − Z_{k+1}
///
/// from Z₀ = W ⊙ M, U₀ = 0; the result is Z after the last iteration (exactly zero off the mask). With ρ → 0 and
/// many iterations it tends to the constrained least-squares solution; the paper stops early (30 iterations, ρ = 1
/// on LLaMA's unnormalised XᵀX), which keeps the solution near the inherited weights. Here ρ = `damping` × the mean
/// diagonal of G (scale-free) and the iterations are `steps` (`fit: {method: reform, damping: 0.1, steps: 30}`).
///
/// Only linears that lose *input columns* are reformed — a mask that removes only whole rows leaves nothing to
/// compensate with (those outputs are gone), as the paper notes. G is the Gram of the *dense* block's input to the
/// linear on the block's inputs (the dense layer's view, omitted channels included).
public enum Reformation {
    /// A linear to reform: its node, its weight's name and the value it reads.
    public struct Target: Sendable, Equatable {
        /// The linear's node.
        public let node: String
        /// Its weight parameter.
        public let weight: String
        /// The value it reads (whose dense Gram the solve needs).
        public let input: String
    }

    /// The linears of `cut` to reform against `dense`: dense linears with a mask that prunes some entries of a row
    /// that keeps others, whose twin in `dense` has the same shape.
    public static func targets(cut: Block, dense: Block) -> [Target] {
        cut.nodes(of: LinearOp.self).compactMap { node, op in
            guard let w = op.weight, let mask = cut.masks[w], let twin = dense.parameters[w], twin.shape == mask.shape,
                  removesColumns(mask) else { return nil }
            return Target(node: node.name, weight: w, input: node.inputs[0])
        }
    }

    /// Whether some row of `mask` keeps some entries and prunes others.
    static func removesColumns(_ mask: Mask) -> Bool {
        guard mask.shape.count == 2 else { return false }
        let n = mask.shape[1]
        for r in 0..<mask.shape[0] {
            let row = mask.keep[(r * n)..<((r + 1) * n)]
            let kept = row.reduce(0) { $0 + Int($1) }
            if kept > 0 && kept < n { return true }
        }
        return false
    }

    /// The reformed weight of a linear with dense weight `dense`, mask `mask` and dense-input Gram `gram`, after
    /// `iterations` ADMM iterations with ρ = `rho` × mean diag G.
    public static func reform(dense w: Tensor, mask: Mask, gram g: Tensor, rho: Double, iterations: Int) throws -> Tensor {
        let n = w.shape[1]
        precondition(g.shape == [n, n] && mask.shape == w.shape, "Reformation.reform: weight \(w.shape), mask \(mask.shape), Gram \(g.shape)")
        let penalty = Float(max(rho * g.diagonalSum / Double(max(n, 1)), 1e-8))
        var p = try spdInverse(g.addingToDiagonal(Double(penalty)))     // (G + ρI)⁻¹
        let fixed = matmul(matmul(w, g), p)                     // W G (G + ρI)⁻¹
        p.withUnsafeMutableBufferPointer { q in for i in q.indices { q[i] *= penalty } }   // ρ (G + ρI)⁻¹
        var z = w
        mask.apply(to: &z)
        var u = Tensor(zeros: w.shape)
        for _ in 0..<iterations {
            var target = z
            target.add(u, scale: -1)
            var what = matmul(target, p)
            what.add(fixed)
            // Z = (Ŵ + U) ⊙ M, U += Ŵ − Z.
            var next = what
            next.add(u)
            mask.apply(to: &next)
            u.add(what)
            u.add(next, scale: -1)
            z = next
        }
        return z
    }

    /// tr((A − W) G (A − W)ᵀ) / tr(W G Wᵀ): the relative output error of weight `a` against the dense `w` on the inputs
    /// whose Gram is `g`.
    public static func relativeError(_ a: Tensor, dense w: Tensor, gram g: Tensor) -> Double {
        var d = a
        d.add(w, scale: -1)
        let energy = LeastSquaresFit.quadratic(w, g)
        return energy > 0 ? LeastSquaresFit.quadratic(d, g) / energy : 0
    }

    /// Reforms every target of `block` against `dense` with the dense-input Grams `grams` (by value name) as `spec`
    /// says (ρ = `damping`, iterations = `steps`). Returns the summed relative layer errors before (the cut weights) and
    /// after.
    @discardableResult
    public static func fit(_ block: inout Block, dense: Block, grams: [String: Tensor], spec: FitSpec) throws -> (before: Double, after: Double) {
        var before = 0.0, after = 0.0
        for t in targets(cut: block, dense: dense) {
            guard let g = grams[t.input] else { throw PipelineError.missingStatistic("the dense Gram of '\(t.input)' (reformation of '\(t.node)')") }
            let w = dense.parameters[t.weight]!, mask = block.masks[t.weight]!
            before += relativeError(block.parameters[t.weight]!, dense: w, gram: g)
            let reformed = try reform(dense: w, mask: mask, gram: g, rho: spec.damping, iterations: spec.steps)
            after += relativeError(reformed, dense: w, gram: g)
            block.setMasked(t.weight, weight: reformed, mask: mask)
        }
        return (before, after)
    }
}
