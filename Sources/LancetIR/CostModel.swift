/// FLOPs and parameter bytes of blocks and models, from each op's `cost` (for achieved-GFLOP/s reports
/// and budgeted search).
public enum CostModel {
    /// The cost of running `block` on `tokens` tokens (one sequence) with residual width `hidden`.
    public static func cost(of block: Block, tokens: Int, hiddenSize hidden: Int) -> OpCost {
        var widths: [String: Int] = [block.input: hidden]
        var total = OpCost()
        for node in block.nodes {
            let inputs = node.inputs.map { widths[$0] ?? 0 }
            total = total + node.op.cost(tokens: tokens, inputs: inputs, parameters: block)
            if let outs = try? node.op.outputFeatures(inputs: inputs, parameters: block) {
                for (name, w) in zip(node.outputs, outs) { widths[name] = w }
            }
        }
        return total
    }

    /// The cost of a forward pass over `tokens` tokens of one sequence, with logits for `logitRows` rows.
    public static func forwardCost(of model: Model, tokens: Int, logitRows: Int) -> OpCost {
        let h = model.config.hiddenSize
        let blocks = model.blocks.reduce(OpCost()) { $0 + cost(of: $1, tokens: tokens, hiddenSize: h) }
        let head = Double(model.head.count)
        return blocks + OpCost(flops: 2 * Double(logitRows) * head, parameterBytes: 4 * head)
    }
}
