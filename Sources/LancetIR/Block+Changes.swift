extension Block {
    /// The values whose contents may differ between this block and `earlier` on the same input: the outputs of every
    /// node whose op, attributes, inputs, parameters or masks differ, and every value downstream of them. When the two
    /// graphs do not have the same nodes in the same order, every node output counts as changed. The block's input
    /// never does. Analyses of a block (XᵀX of `attn_in`, …) stay valid when nothing they read changed.
    public func valuesChanged(from earlier: Block) -> Set<String> {
        let everything = Set(nodes.flatMap(\.outputs)).union(earlier.nodes.flatMap(\.outputs))
        guard nodes.map(\.name) == earlier.nodes.map(\.name) else { return everything }
        var changed = Set<String>()
        for (node, before) in zip(nodes, earlier.nodes) {
            let names = node.op.parameterNames
            let differs = node.kind != before.kind || node.inputs != before.inputs || node.outputs != before.outputs
                || node.op.attributes != before.op.attributes || names != before.op.parameterNames
                || names.contains { parameters[$0] != earlier.parameters[$0] || masks[$0] != earlier.masks[$0] }
            if differs || node.inputs.contains(where: changed.contains) { changed.formUnion(node.outputs) }
        }
        if output != earlier.output { changed.insert(output) }
        return changed
    }
}
