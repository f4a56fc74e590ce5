extension Block {
    /// The values whose contents may differ between this block and `earlier` on the same input: the outputs of every
    /// node whose op, attributes, inputs, parameters or masks differ, and every value downstream of them. When the two
    /// graphs do not have the same nodes in the same order, every node output counts as changed. The block's input
    /// never does. Analyses of a block (XᵀX of `attn_in`, …) stay valid when nothing they read changed.
    public func valuesChanged(from earlier: Block) -> Set<String> {
        let everything = Set(nodes.flatMap(\.outputs)).union(earlier.nodes.flatMap(\.outputs))
        guard nodes.map(\.name) == earlier.nodes.map(\.name) else { return everything }
        var differing = Set<Int>()
        for (i, (node, before)) in zip(nodes, earlier.nodes).enumerated() {
            let names = node.op.parameterNames
            let differs = node.kind != before.kind || node.inputs != before.inputs || node.outputs != before.outputs
                || node.op.attributes != before.op.attributes || names != before.op.parameterNames
                || names.contains { parameters[$0] != earlier.parameters[$0] || masks[$0] != earlier.masks[$0] }
            if differs { differing.insert(i) }
        }
        var changed = valuesDownstream(ofNodes: differing)
        if output != earlier.output { changed.insert(output) }
        return changed
    }

    /// The outputs of the nodes at `indices` and every value computed from them.
    public func valuesDownstream(ofNodes indices: Set<Int>) -> Set<String> {
        var downstream = Set<String>()
        for (i, node) in nodes.enumerated() where indices.contains(i) || node.inputs.contains(where: downstream.contains) {
            downstream.formUnion(node.outputs)
        }
        return downstream
    }
}
