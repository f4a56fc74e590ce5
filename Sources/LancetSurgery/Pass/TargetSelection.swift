import LancetIR

/// Which parameters a pass may cut: glob patterns over IR paths, minus ignored ones.
///
/// Paths are `blocks.<index>.<node>` for nodes (`blocks.3.mlp.gate`) and `blocks.<index>.<parameter>`
/// for parameters (`blocks.3.mlp.gate.weight`); a pattern matching either selects the node. In a pattern
/// `*` matches any run of characters (dots included) and `?` any one character, so `blocks.*.mlp.*`
/// selects every MLP linear and `blocks.0.*` everything in block 0.
public struct TargetSelection: Sendable, Equatable {
    /// Patterns of what to cut (every block linear when empty).
    public var targets: [String]
    /// Patterns of what to leave alone, applied after `targets`.
    public var ignore: [String]

    /// Every linear of every block.
    public static let all = TargetSelection(targets: [], ignore: [])

    /// Creates a selection.
    public init(targets: [String], ignore: [String]) {
        self.targets = targets
        self.ignore = ignore
    }

    /// Whether the node `node` of block `block` is selected.
    public func selects(block: Int, node: String, parameters: [String] = []) -> Bool {
        let paths = ["blocks.\(block).\(node)"] + parameters.map { "blocks.\(block).\($0)" }
        let included = targets.isEmpty || targets.contains { p in paths.contains { Glob.matches(p, $0) } }
        return included && !ignore.contains { p in paths.contains { Glob.matches(p, $0) } }
    }

    /// The selected linear nodes of block `index` (dense linears only: low-rank ones are not pruned).
    public func linears(in block: Block, index: Int) -> [(node: Node, op: LinearOp)] {
        block.nodes(of: LinearOp.self).filter { n, op in
            op.weight != nil && selects(block: index, node: n.name, parameters: op.parameterNames)
        }
    }

    /// Whether `block` (block `index`) has a dense SwiGLU MLP (`LlamaBlock.mlpNodes`, dense linears) whose three linears
    /// are all selected: what the passes that replace the whole MLP (moefy, dynamic-ffn) convert.
    public func selectsWholeMLP(_ block: Block, index: Int) -> Bool {
        let selected = Set(linears(in: block, index: index).map(\.node.name))
        return ["mlp.gate", "mlp.up", "mlp.down"].allSatisfy(selected.contains)
            && block.node("mlp.act")?.op is SiLUOp && block.node("mlp.mul")?.op is MulOp
    }

    /// The selected nodes of block `index`, of any op (the recipe's targets may name norms, routers, plugin ops).
    public func nodes(in block: Block, index: Int) -> [Node] {
        block.nodes.filter { selects(block: index, node: $0.name, parameters: $0.op.parameterNames) }
    }

    /// Whether a pass with this selection has anything to work on in block `index`: everything when no targets
    /// are given, else any selected node (not only dense linears).
    public func selectsAnything(in block: Block, index: Int) -> Bool {
        targets.isEmpty || !nodes(in: block, index: index).isEmpty
    }

    /// The patterns that match nothing in `model` (for validation before any compute).
    public func unmatchedPatterns(in model: Model) -> [String] {
        var paths: [String] = []
        for (i, b) in model.blocks.enumerated() {
            for n in b.nodes { paths.append("blocks.\(i).\(n.name)") }
            for p in b.parameters.keys { paths.append("blocks.\(i).\(p)") }
        }
        return (targets + ignore).filter { p in !paths.contains { Glob.matches(p, $0) } }
    }
}

/// Shell-style glob matching where `*` also matches dots.
public enum Glob {
    /// Whether `text` matches `pattern` as a whole.
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
