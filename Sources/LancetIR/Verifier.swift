import LancetTensor

/// A broken IR rule, located: the block, the node (when one is at fault) and the reason.
public struct VerifierError: Error, CustomStringConvertible, Equatable {
    /// Index of the block, or nil for a model-level rule.
    public let block: Int?
    /// Name of the node at fault, if any.
    public let node: String?
    /// The rule that is broken.
    public let reason: String
    /// The pass that left the model in this state, when known.
    public var pass: String?

    /// Creates an error.
    public init(block: Int?, node: String?, reason: String, pass: String? = nil) {
        self.block = block
        self.node = node
        self.reason = reason
        self.pass = pass
    }

    public var description: String {
        var parts: [String] = []
        if let pass { parts.append("after pass '\(pass)'") }
        if let block { parts.append("block \(block)") }
        if let node { parts.append("node '\(node)'") }
        return (parts.isEmpty ? "model" : parts.joined(separator: ", ")) + ": " + reason
    }
}

/// Checks the IR's invariants: every value defined once before use, shapes that agree, head counts that
/// divide, masks that match their weights (with zeros where they prune), no unused parameters, and block
/// widths equal to the model's hidden size.
public enum Verifier {
    /// Verifies the whole model; throws the first broken rule.
    public static func verify(_ model: Model) throws {
        let h = model.config.hiddenSize, v = model.config.vocabularySize
        guard model.embedding.shape == [v, h] else {
            throw VerifierError(block: nil, node: nil, reason: "embedding has shape \(model.embedding.shape), expected [\(v), \(h)]")
        }
        guard model.finalNorm.shape == [h] else {
            throw VerifierError(block: nil, node: nil, reason: "final norm has shape \(model.finalNorm.shape), expected [\(h)]")
        }
        if let head = model.outputHead, head.shape != [v, h] {
            throw VerifierError(block: nil, node: nil, reason: "output head has shape \(head.shape), expected [\(v), \(h)]")
        }
        if let tokenizer = model.tokenizer, tokenizer.tokenCount > v {
            throw VerifierError(block: nil, node: nil, reason: "the tokenizer has \(tokenizer.tokenCount) tokens, more than the embedding's \(v) rows")
        }
        for (i, b) in model.blocks.enumerated() { try verify(b, index: i, hiddenSize: h) }
    }

    /// Verifies one block whose input and output must be `hiddenSize` wide.
    public static func verify(_ block: Block, index: Int, hiddenSize: Int) throws {
        func fail(_ node: String?, _ reason: String) -> VerifierError { VerifierError(block: index, node: node, reason: reason) }
        var widths: [String: Int] = [block.input: hiddenSize]
        var names = Set<String>()
        var used = Set<String>()
        for node in block.nodes {
            guard names.insert(node.name).inserted else { throw fail(node.name, "node name is used twice") }
            var inputWidths: [Int] = []
            for input in node.inputs {
                guard let w = widths[input] else { throw fail(node.name, "reads value '\(input)', which is not defined before it") }
                inputWidths.append(w)
            }
            for p in node.op.parameterNames {
                guard block.parameters[p] != nil else { throw fail(node.name, "parameter '\(p)' is missing") }
                used.insert(p)
            }
            let outs: [Int]
            do { outs = try node.op.outputFeatures(inputs: inputWidths, parameters: block) } catch let e as OpShapeError {
                throw fail(node.name, e.reason)
            }
            guard outs.count == node.outputs.count else {
                throw fail(node.name, "\(node.kind) defines \(outs.count) values, node names \(node.outputs.count)")
            }
            for (name, w) in zip(node.outputs, outs) {
                guard widths[name] == nil else { throw fail(node.name, "value '\(name)' is defined twice") }
                widths[name] = w
            }
        }
        guard let out = widths[block.output] else { throw fail(nil, "output value '\(block.output)' is never defined") }
        guard out == hiddenSize else { throw fail(nil, "output '\(block.output)' has \(out) features, the model's hidden size is \(hiddenSize)") }
        for name in block.parameters.keys.sorted() where !used.contains(name) {
            throw fail(nil, "parameter '\(name)' is not used by any node")
        }
        for (name, mask) in block.masks.sorted(by: { $0.key < $1.key }) {
            guard let w = block.parameters[name] else { throw fail(nil, "mask '\(name)' has no parameter of that name") }
            guard w.shape == mask.shape else { throw fail(nil, "mask '\(name)' has shape \(mask.shape), its weight \(w.shape)") }
            let bad = w.withUnsafeBufferPointer { wp in (0..<wp.count).first { mask.keep[$0] == 0 && wp[$0] != 0 } }
            if let bad { throw fail(nil, "weight '\(name)' is non-zero at element \(bad), which its mask prunes") }
        }
    }
}
