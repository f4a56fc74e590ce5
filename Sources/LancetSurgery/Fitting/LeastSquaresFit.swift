import LancetIR
import LancetRuntime
import LancetTensor

/// Per-linear closed-form least squares after a cut: each output row's surviving weights are refitted so
/// that the cut layer, on its inputs in the cut block, reproduces the dense layer's output on the dense
/// block's inputs (same block inputs X):
///
///     min_w ‖X'_S w − X W₀ᵀ e_r‖² + λ‖w − w_cut‖²   ⇒   (G'_SS + λI) w = (C W₀ᵀ)_S,r + λ w_cut,S
///
/// with `G' = X'ᵀX'`, `C = X'ᵀX`, S the row's kept input columns (its mask, or every column),
/// λ = damping · mean(diag G') and `w_cut` the row as the cut left it. The damping pulls towards the cut
/// weights, not towards zero: hidden states with a few huge channels make mean(diag G') much larger than
/// most channels' own energy, and a pull towards zero would shrink those channels' weights. Rows with the same kept set share one Cholesky factorisation. Linears
/// whose output width changed (rows removed by a structured cut) are left as they are: their surviving
/// rows see unchanged inputs unless an upstream cut changed them.
enum LeastSquaresFit {
    /// A linear to refit: its node, the parameter refitted, the dense weight, and the input value names in both
    /// blocks. For a low-rank linear `y = (x·Aᵀ)·Bᵀ` the outer factor B is refitted given the inner one (`inner`
    /// = A's name): its input is `x·Aᵀ`, so the statistics of x become `A·G·Aᵀ` and `A·C`.
    struct Target {
        let node: String
        let weightName: String
        let denseWeight: Tensor
        let input: String
        var inner: String? = nil
    }

    /// Under a model teacher, the drift of the residual stream a linear writes into (`y = r + linear(x)`): with
    /// Δ = r − r' the difference of the dense model's summand and the cut model's, the linear's target becomes
    /// X W₀ᵀ + Δ, so that the cut model's sum y' matches the dense model's y and the linear absorbs (as far as a
    /// linear map of its inputs can) the error the earlier layers left in the stream.
    struct ResidualDrift {
        /// X'ᵀΔ `[in, out]`.
        var cut: Tensor
        /// XᵀΔ `[in, out]` (for the objective's constant).
        var dense: Tensor
        /// ‖Δ‖².
        var energy = 0.0
    }

    /// The linears of `cut` whose weights differ from `dense`'s and whose output width is unchanged: dense ones, and
    /// low-rank ones whose node is a dense linear in `dense` (a factorised weight: its outer factor is refitted).
    static func targets(cut: Block, dense: Block) -> [Target] {
        cut.nodes(of: LinearOp.self).compactMap { node, op in
            if let (a, b) = op.factors {
                guard let twin = dense.node(node.name)?.op as? LinearOp, let w = twin.weight, let before = dense.parameters[w],
                      let outer = cut.parameters[b], outer.shape[0] == before.shape[0] else { return nil }
                return Target(node: node.name, weightName: b, denseWeight: before, input: node.inputs[0], inner: a)
            }
            guard let w = op.weight, let now = cut.parameters[w], let before = dense.parameters[w],
                  now.shape[0] == before.shape[0], now != before || cut.masks[w] != dense.masks[w] else { return nil }
            return Target(node: node.name, weightName: w, denseWeight: before, input: node.inputs[0])
        }
    }

    /// `targets` in rounds that can be fitted together: a target joins a round only when no target of this or
    /// a later round lies upstream of its input, so each round's inputs X' are measured after every linear
    /// feeding them was refitted (for a Llama block: q/k/v, then o, then gate/up, then down).
    static func rounds(_ targets: [Target], in block: Block) -> [[Target]] {
        // Values each node's output depends on, transitively, by the nodes (in topological order).
        var upstream: [String: Set<String>] = [:]           // value → node names it depends on
        for node in block.nodes {
            var deps = Set<String>([node.name])
            for input in node.inputs { deps.formUnion(upstream[input] ?? []) }
            for output in node.outputs { upstream[output] = deps }
        }
        var remaining = targets
        var result: [[Target]] = []
        while !remaining.isEmpty {
            let pending = Set(remaining.map(\.node))
            var round = remaining.filter { (upstream[$0.input] ?? []).isDisjoint(with: pending) }
            if round.isEmpty { round = [remaining[0]] }        // unreachable for a DAG; keeps the loop finite
            let chosen = Set(round.map(\.node))
            remaining.removeAll { chosen.contains($0.node) }
            result.append(round)
        }
        return result
    }

    /// A target's right-hand side from the dense layer's outputs: X'ᵀ(X W₀ᵀ) and ‖X W₀ᵀ‖², in place of the cross
    /// Gram C = X'ᵀX and the dense Gram (`denseOutputProducts` says where that is cheaper).
    struct DenseProduct {
        /// X'ᵀ(X W₀ᵀ) `[in', out]`.
        var rhs: Tensor
        /// ‖X W₀ᵀ‖².
        var energy = 0.0
    }

    /// The inputs whose targets take their right-hand sides from the dense outputs (`DenseProduct`), each with the
    /// output values of the `linears` (node names in `block`) that read it: where those linears' outputs together are
    /// narrower than the input, X'ᵀ·(X W₀ᵀ) costs fewer flops than X'ᵀX (for `mlp.down`, 576 outputs of 1,536 inputs:
    /// 2.7× fewer), provided the dense outputs are at hand (kept by the sweep that ran the dense block).
    static func denseOutputProducts(of linears: [String], in block: Block) -> [String: [String]] {
        var readers: [String: [(output: String, width: Int, inputWidth: Int)]] = [:]
        for name in linears {
            guard let node = block.node(name), let op = node.op as? LinearOp, op.factors == nil, let w = op.weight,
                  let weight = block.parameters[w], weight.rank == 2 else { continue }
            readers[node.inputs[0], default: []].append((node.outputs[0], weight.shape[0], weight.shape[1]))
        }
        return readers.filter { _, r in r.reduce(0) { $0 + $1.width } < r[0].inputWidth }.mapValues { $0.map(\.output) }
    }

    /// The dense block's values a least-squares fit of `linears` (node names in `block`) reads: every linear's input,
    /// and the outputs its right-hand sides are formed from (`denseOutputProducts`). What a sweep of the dense block
    /// keeps for the fit.
    static func denseValuesRead(by linears: [String], in block: Block) -> Set<String> {
        Set(linears.compactMap { block.node($0)?.inputs[0] }).union(denseOutputProducts(of: linears, in: block).values.joined())
    }

    /// Refits `targets` in `block` from the cross statistics; returns the summed reconstruction objective
    /// ‖X'Wᵀ − T‖² before and after, relative to ‖T‖², with T = XW₀ᵀ (+ Δ for a linear with a residual `drift`,
    /// keyed by node). A target with a `denseProducts` entry (keyed by node) needs no cross or dense Gram.
    static func fit(_ block: inout Block, targets: [Target], cutGram: [String: Tensor], crossGram: [String: Tensor],
                    denseGram: [String: Tensor], denseProducts: [String: DenseProduct] = [:], drift: [String: ResidualDrift] = [:],
                    damping: Double) throws -> (before: Double, after: Double) {
        var before = 0.0, after = 0.0, scale = 0.0
        for t in targets {
            let product = denseProducts[t.node]
            guard let cutG = cutGram[t.input], product != nil || (crossGram[t.input] != nil && denseGram[t.input] != nil) else {
                throw PipelineError.missingStatistic("Gram statistics of '\(t.input)' for fitting '\(t.node)'")
            }
            let w = block.parameters[t.weightName]!
            // [in', out] = C · W₀ᵀ = X'ᵀ(X W₀ᵀ), and Σ_r w0ᵀ G w0 = ‖X W₀ᵀ‖²
            var b = product?.rhs ?? matmul(crossGram[t.input]!, t.denseWeight, transposeB: true)
            var reference = product?.energy ?? quadratic(t.denseWeight, denseGram[t.input]!)
            if let d = drift[t.node] {                                  // T = X W₀ᵀ + Δ
                b.add(d.cut)
                reference += 2 * traceProduct(t.denseWeight, d.dense) + d.energy
            }
            var g = cutG
            if let inner = t.inner, let a = block.parameters[inner] {   // the outer factor's input is x·Aᵀ
                g = matmul(matmul(a, g), a, transposeB: true)           // A·G'·Aᵀ  [rank, rank]
                b = matmul(a, b)                                        // A·C·W₀ᵀ  [rank, out]
            }
            let constant = reference
            before += objective(w, g, b) + constant
            var fitted = try solveRows(w, mask: block.masks[t.weightName], gram: g, rhs: b, damping: damping)
            if let mask = block.masks[t.weightName] { mask.apply(to: &fitted) }
            after += objective(fitted, g, b) + constant
            scale += reference
            block.parameters[t.weightName] = fitted
        }
        return scale > 0 ? (before / scale, after / scale) : (0, 0)
    }

    /// Σ_r (w_rᵀ G w_r − 2 w_rᵀ b_r): the objective up to the constant ‖X W₀ᵀ‖².
    static func objective(_ w: Tensor, _ g: Tensor, _ b: Tensor) -> Double {
        let wg = matmul(w, g)                                             // [out, in']
        var total = 0.0
        let (out, n) = (w.shape[0], w.shape[1])
        w.withUnsafeBufferPointer { wp in wg.withUnsafeBufferPointer { gp in b.withUnsafeBufferPointer { bp in
            for r in 0..<out {
                var q = 0.0, lin = 0.0
                for j in 0..<n {
                    q += Double(wp[r * n + j]) * Double(gp[r * n + j])
                    lin += Double(wp[r * n + j]) * Double(bp[j * out + r])
                }
                total += q - 2 * lin
            }
        }}}
        return total
    }

    /// Σ_{o,i} W[o, i]·D[i, o] = ⟨X W₀ᵀ, Δ⟩ for D = XᵀΔ.
    static func traceProduct(_ w: Tensor, _ d: Tensor) -> Double {
        let (out, n) = (w.shape[0], w.shape[1])
        precondition(d.shape == [n, out], "traceProduct: \(w.shape) against \(d.shape)")
        return w.withUnsafeBufferPointer { wp in d.withUnsafeBufferPointer { dp in
            var total = 0.0
            for o in 0..<out { for i in 0..<n { total += Double(wp[o * n + i]) * Double(dp[i * out + o]) } }
            return total
        }}
    }

    /// Σ_r w_rᵀ G w_r.
    static func quadratic(_ w: Tensor, _ g: Tensor) -> Double {
        let wg = matmul(w, g)
        return w.withUnsafeBufferPointer { a in wg.withUnsafeBufferPointer { b in (0..<a.count).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) } } }
    }

    /// Solves every row's normal equations on its kept columns; rows sharing a kept set share a factorisation.
    static func solveRows(_ w: Tensor, mask: Mask?, gram g: Tensor, rhs b: Tensor, damping: Double) throws -> Tensor {
        let (out, n) = (w.shape[0], w.shape[1])
        let meanDiagonal = g.withUnsafeBufferPointer { p in (0..<n).reduce(0.0) { $0 + Double(p[$1 * n + $1]) } } / Double(max(n, 1))
        let lambda = Float(max(damping * meanDiagonal, 1e-8))
        // Group rows by their kept column set.
        var groups: [[UInt8]: [Int]] = [:]
        var order: [[UInt8]] = []
        for r in 0..<out {
            let key = mask.map { Array($0.keep[(r * n)..<((r + 1) * n)]) } ?? []
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        var result = w
        let saved = threadCount
        if order.count > 1 { setThreadCount(1) }
        defer { if order.count > 1 { setThreadCount(saved) } }
        let failure = FailureBox()
        let resultBox = TensorBox(result)
        parallelFor(0..<order.count, chunks: order.count > 1 ? processorCount : 1) { range in
            for gi in range {
                let key = order[gi]
                let rows = groups[key]!
                let kept = key.isEmpty ? Array(0..<n) : (0..<n).filter { key[$0] != 0 }
                if kept.isEmpty { continue }
                let k = kept.count
                var sub = Tensor(uninitializedShape: [k, k])
                var rhs = Tensor(uninitializedShape: [k, rows.count])
                g.withUnsafeBufferPointer { gp in b.withUnsafeBufferPointer { bp in
                    sub.withUnsafeMutableBufferPointer { s in
                        for (i, ci) in kept.enumerated() {
                            for (j, cj) in kept.enumerated() { s[i * k + j] = gp[ci * n + cj] }
                            s[i * k + i] += lambda
                        }
                    }
                    w.withUnsafeBufferPointer { wp in rhs.withUnsafeMutableBufferPointer { r in
                        for (i, ci) in kept.enumerated() {
                            for (j, row) in rows.enumerated() { r[i * rows.count + j] = bp[ci * out + row] + lambda * wp[row * n + ci] }
                        }
                    }}
                }}
                do {
                    let x = try solveSPD(sub, rhs)                    // [k, rows]
                    resultBox.write { wp in
                        x.withUnsafeBufferPointer { xp in
                            for (j, row) in rows.enumerated() {
                                for c in 0..<n { wp[row * n + c] = 0 }
                                for (i, ci) in kept.enumerated() { wp[row * n + ci] = xp[i * rows.count + j] }
                            }
                        }
                    }
                } catch { failure.set(error) }
            }
        }
        if let e = failure.error { throw e }
        result = resultBox.tensor
        return result
    }
}

/// A tensor written by disjoint rows from several workers.
final class TensorBox: @unchecked Sendable {
    var tensor: Tensor
    private let base: UnsafeMutablePointer<Float>
    init(_ t: Tensor) {
        tensor = t
        base = tensor.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }
    /// Writes through the storage (callers touch disjoint elements).
    func write(_ body: (UnsafeMutablePointer<Float>) -> Void) { body(base) }
}

/// The first error thrown by any worker.
final class FailureBox: @unchecked Sendable {
    private(set) var error: Error?
    private let lock = NSLockShim()
    func set(_ e: Error) { lock.sync { if error == nil { error = e } } }
}
