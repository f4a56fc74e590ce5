import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// How much each targeted linear's truncation moves its block's output, measured: for every linear in turn, the block
/// with that linear alone truncated to a probe rank (under the pass's weighting) against the dense block, as the
/// relative block-output error ‖block'(X) − block(X)‖² / ‖block(X)‖² on the first `windows` calibration windows, with
/// the discarded weighted energy Σ_{i≥probe} σᵢ² / Σ σᵢ² of that truncation beside it.
///
/// A self-computing analysis (it reads the block's inputs itself): it captures each linear's inputs on the probe
/// windows, builds the weighting from them, truncates, and runs the block once per linear. `RankAllocation` turns the
/// ratio of the two numbers into the block-output error each discarded singular value costs.
struct TruncationSensitivity: BlockAnalysis {
    /// The linears measured (node names, in block order), with their probe ranks.
    let linears: [(node: String, rank: Int)]
    /// Calibration windows measured.
    let windows: Int
    /// The pass's weighting of a linear from its inputs X on the probe windows.
    let weighting: @Sendable (Node, Tensor) throws -> InputWeighting
    /// Distinguishes passes (weightings) in the cache.
    let method: String

    var id: String { "truncation-sensitivity(\(method), \(windows), \(linears.map { "\($0.node):\($0.rank)" }.joined(separator: ",")))" }
    func reads(in block: Block) -> Set<String> { [] }

    /// Per linear: [block-output error, discarded relative weighted energy].
    func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> NamedTensorSums {
        let n = min(windows, inputs.shape[0] / max(length, 1))
        let x = inputs.slicingRows(0..<(n * length))
        func run(_ b: Block, capture: Set<String> = []) throws -> BlockExecutor.Result {
            try BlockExecutor.forward(b, index: index, input: x, context: ExecutionContext(batch: n, length: length), capture: capture)
        }
        let values = Set(linears.compactMap { block.node($0.node)?.inputs[0] })
        let dense = try run(block, capture: values)
        let energy = dense.output.withUnsafeBufferPointer { p in p.reduce(0.0) { $0 + Double($1) * Double($1) } }
        var sums: [String: Tensor] = [:]
        for (name, rank) in linears {
            guard let node = block.node(name), let op = node.op as? LinearOp, let w = op.weight.flatMap({ block.parameters[$0] }) else { continue }
            let f = try LowRankFactors.truncate(w, weighting: try weighting(node, dense.values[node.inputs[0]]!), rank: rank)
            var cut = block
            cut.factorise(linear: name, into: f)
            var difference = try run(cut).output
            difference.add(dense.output, scale: -1)
            let error = difference.withUnsafeBufferPointer { p in p.reduce(0.0) { $0 + Double($1) * Double($1) } } / max(energy, 1e-30)
            sums[name] = Tensor(shape: [2], [Float(error), Float(f.relativeTruncationError)])
        }
        return NamedTensorSums(sums, count: 1)
    }
}
