import LancetTensor

/// One decoder block: a small dataflow graph in SSA form with its own parameters and masks.
///
/// The block reads the residual stream from the value `input` and defines `output`; both are
/// `[tokens, hidden]`. Every block may have its own sizes (heads, KV heads, FFN width, experts,
/// low-rank factors), or lack a sub-layer entirely. Parameter names are local (`attn.q.weight`);
/// their model-wide path is `blocks.<index>.<name>`.
public struct Block: Sendable {
    /// The name of the block's input value.
    public var input: String
    /// The name of the block's output value.
    public var output: String
    /// Nodes in execution order.
    public var nodes: [Node]
    /// Parameters by local name.
    public var parameters: [String: Tensor]
    /// Masks by the local name of the parameter they mask.
    public var masks: [String: Mask]

    /// Creates a block.
    public init(input: String = "x", output: String, nodes: [Node], parameters: [String: Tensor], masks: [String: Mask] = [:]) {
        self.input = input
        self.output = output
        self.nodes = nodes
        self.parameters = parameters
        self.masks = masks
    }

    /// The node called `name`.
    public func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    /// The index of the node called `name`.
    public func nodeIndex(_ name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// The value `node`'s output is summed with by a two-input `add` (the residual stream it writes into: `x` for
    /// a Llama block's `attn.o`, `h` for its `mlp.down`), or nil when its output feeds no such sum.
    public func residualSummand(of node: Node) -> String? {
        guard let output = node.outputs.first,
              let add = nodes.first(where: { $0.op is AddOp && $0.inputs.count == 2 && $0.inputs.contains(output) }) else { return nil }
        return add.inputs.first { $0 != output }
    }

    /// The nodes of one op type, in order.
    public func nodes<O: Op>(of _: O.Type) -> [(node: Node, op: O)] {
        nodes.compactMap { n in (n.op as? O).map { (n, $0) } }
    }

    /// Number of parameter elements (masked elements still count; see `keptParameterCount`).
    public var parameterCount: Int { parameters.values.reduce(0) { $0 + $1.count } }

    /// Number of parameter elements that survive their masks.
    public var keptParameterCount: Int {
        parameters.reduce(0) { total, entry in
            guard let m = masks[entry.key] else { return total + entry.value.count }
            return total + m.keep.reduce(0) { $0 + Int($1) }
        }
    }

    /// Sets a weight together with its mask, zeroing the pruned elements.
    public mutating func setMasked(_ name: String, weight: Tensor, mask: Mask) {
        var w = weight
        mask.apply(to: &w)
        parameters[name] = w
        masks[name] = mask
    }
}

extension Block: ParameterLookup {
    /// The parameter called `name`, or nil.
    public func parameter(_ name: String) -> Tensor? { parameters[name] }
}
