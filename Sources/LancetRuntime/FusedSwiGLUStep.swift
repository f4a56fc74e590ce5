import LancetIR
import LancetTensor

/// Decoding's SwiGLU feed-forward as one step: the five nodes `linear` (gate), `linear` (up), `silu`, `mul`,
/// `linear` (down) of a dense Llama MLP run as one `swiGLUMatrixVector` — one hand-off to the cores where the nodes
/// take three, and no tensors in between. The values are those of the five nodes, bit for bit.
///
/// `BlockExecutor` uses it for one token of one sequence, when the five nodes appear in that order with dense 32-bit
/// weights and no bias, and nothing else reads, captures or keeps the values in between.
struct FusedSwiGLUStep {
    /// The nodes' shared input and the down projection's output.
    let input: String, output: String
    /// The weights' names.
    let gate: String, up: String, down: String
    /// The nodes it stands for.
    static let length = 5
    /// Its name in per-op timings (`lancet bench --profile`).
    static let kind = "mlp (fused)"

    /// The step starting at node `i` of `block`, or nil when the nodes there are not a fusable SwiGLU feed-forward.
    /// `lastUse` is `BlockExecutor.lastUses(block)`; `capture` the values the caller wants back.
    init?(block: Block, at i: Int, lastUse: [String: Int], capture: Set<String>, half: HalfWeights?) {
        guard i + Self.length <= block.nodes.count, block.nodes[i].op is LinearOp, block.nodes[i + 2].op is SiLUOp else { return nil }
        let n = Array(block.nodes[i..<(i + Self.length)])
        guard let g = n[0].op as? LinearOp, let u = n[1].op as? LinearOp, n[2].op is SiLUOp, n[3].op is MulOp,
              let d = n[4].op as? LinearOp,
              let gw = g.weight, let uw = u.weight, let dw = d.weight, g.bias == nil, u.bias == nil, d.bias == nil,
              n[0].inputs.count == 1, n[1].inputs == n[0].inputs, n[0].outputs.count == 1, n[1].outputs.count == 1,
              n[2].inputs == n[0].outputs, n[2].outputs.count == 1,
              Set(n[3].inputs) == Set([n[2].outputs[0], n[1].outputs[0]]), n[3].inputs.count == 2, n[3].outputs.count == 1,
              n[4].inputs == n[3].outputs, n[4].outputs.count == 1
        else { return nil }
        // The values in between live only inside the step.
        let inner = [n[0].outputs[0], n[1].outputs[0], n[2].outputs[0], n[3].outputs[0]]
        guard inner.allSatisfy({ lastUse[$0].map { $0 < i + Self.length } ?? false && !capture.contains($0) && $0 != block.output })
        else { return nil }
        guard let gt = block.parameters[gw], let ut = block.parameters[uw], let dt = block.parameters[dw],
              gt.rank == 2, gt.shape == ut.shape, dt.rank == 2, dt.shape[1] == gt.shape[0],
              half?.matrix(for: gt) == nil, half?.matrix(for: ut) == nil, half?.matrix(for: dt) == nil
        else { return nil }
        input = n[0].inputs[0]
        output = n[4].outputs[0]
        (gate, up, down) = (gw, uw, dw)
    }

    /// The feed-forward's output `[1, rows]` for the one-token input `x`.
    func run(_ x: Tensor, parameters: Block) throws -> Tensor {
        let g = try parameters.require(gate), u = try parameters.require(up), d = try parameters.require(down)
        guard x.rank == 2, x.shape[0] == 1, x.shape[1] == g.shape[1] else {
            throw OpShapeError("'\(gate)' \(g.shape) cannot read an input of shape \(x.shape)")
        }
        return Linear.applySwiGLU(x, gate: g, up: u, down: d)
    }
}
