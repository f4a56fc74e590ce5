/// One operation in a block's graph: an op applied to named input values, defining named output values.
public struct Node: Sendable {
    /// The node's name, unique in its block; for parameterised ops it is the prefix of their parameters
    /// (`attn.q` owns `attn.q.weight`), and `blocks.N.<name>` is its path in recipes.
    public var name: String
    /// The operation.
    public var op: any Op
    /// Names of the values read, in the op's order.
    public var inputs: [String]
    /// Names of the values defined, in the op's order.
    public var outputs: [String]

    /// Creates a node.
    public init(_ name: String, _ op: any Op, inputs: [String], outputs: [String]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The op's kind.
    public var kind: String { type(of: op).kind }
}
