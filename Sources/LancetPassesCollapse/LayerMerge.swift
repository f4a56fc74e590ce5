import LancetIR
import LancetTensor

/// LaCo's Reserving-Differences-while-Seeking-Common merge: blocks l+1…l+m collapse into block l as
/// θ*_l = θ_l + Σ_k (θ_{l+k} − θ_l) for every weight and bias of its linears (attention and MLP); block l keeps
/// its norms and its graph. Every merged block must have the same linears with the same shapes, dense (a
/// low-rank factor pair does not add up). Masks on merged linears are dropped: the sum is dense.
enum LayerMerge {
    /// The merge of `base` (its index `index`, for errors) with `others`.
    static func merge(_ base: Block, index: Int, with others: [Block]) throws -> Block {
        var merged = base
        for (node, op) in base.nodes(of: LinearOp.self) {
            guard op.factors == nil else { throw LayerMergeError(block: index, "'\(node.name)' is low-rank; LaCo merges dense linears only") }
            for name in op.parameterNames {
                guard let theta = base.parameters[name] else { continue }
                var sum = theta
                let count = Float(others.count)
                try sum.withUnsafeMutableBufferPointer { s in
                    for (k, other) in others.enumerated() {
                        guard let t = other.parameters[name], t.shape == theta.shape else {
                            throw LayerMergeError(block: index + k + 1, "has no '\(name)' of shape \(theta.shape) to merge into block \(index)")
                        }
                        t.withUnsafeBufferPointer { t in for i in s.indices { s[i] += t[i] } }
                    }
                    theta.withUnsafeBufferPointer { b in for i in s.indices { s[i] -= count * b[i] } }
                }
                merged.parameters[name] = sum
                merged.masks[name] = nil
            }
        }
        return merged
    }
}

/// A block that cannot be merged into another.
struct LayerMergeError: Error, CustomStringConvertible {
    /// The offending block's index.
    let block: Int
    /// What is wrong.
    let reason: String
    init(block: Int, _ reason: String) {
        self.block = block
        self.reason = reason
    }
    var description: String { "laco: block \(block) \(reason)" }
}
