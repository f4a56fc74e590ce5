import LancetTensor

/// Renders a block's graph as text, one node per line:
/// `%q = linear(%attn_in) {weight: attn.q.weight [576, 576] 50.0% pruned}`.
public enum BlockPrinter {
    /// The text of block `index`.
    public static func render(_ block: Block, index: Int) -> String {
        var lines = ["block \(index) (%\(block.input)) -> %\(block.output)   parameters: \(block.parameterCount)"]
        for node in block.nodes {
            let parameterNames = Set(node.op.parameterNames)
            var attrs = node.op.attributes.sorted { $0.key < $1.key }
                .filter { $0.value.string.map { !parameterNames.contains($0) } ?? true }
                .map { "\($0.key): \($0.value)" }
            for p in node.op.parameterNames {
                let shape = block.parameters[p].map { "\($0.shape)" } ?? "missing"
                var text = "\(p) \(shape)"
                if let m = block.masks[p] { text += " \(format(m.sparsity * 100))% pruned" }
                attrs.append(text)
            }
            let outs = node.outputs.map { "%" + $0 }.joined(separator: ", ")
            let ins = node.inputs.map { "%" + $0 }.joined(separator: ", ")
            lines.append("  \(outs) = \(node.kind)(\(ins))" + (attrs.isEmpty ? "" : " {\(attrs.joined(separator: ", "))}") + "   // \(node.name)")
        }
        return lines.joined(separator: "\n")
    }

    private static func format(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return String(r)
    }
}
