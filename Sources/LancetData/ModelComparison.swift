import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// Two models side by side on the same inputs (`lancet compare`): their sizes and block shapes, and how far the
/// second one's block outputs drift from the first's.
public enum ModelComparison {
    /// The sizes of one model's sub-layers in one block (0 for a sub-layer the block lacks).
    public struct BlockShape: Sendable, Codable, Equatable, Hashable {
        /// Query heads.
        public var heads: Int
        /// Key/value heads.
        public var kvHeads: Int
        /// FFN width (gate/up rows), dense or low-rank.
        public var ffnWidth: Int
        /// Linears held as low-rank factors.
        public var lowRankLinears: Int

        /// A block shape from its sizes.
        public init(heads: Int, kvHeads: Int, ffnWidth: Int, lowRankLinears: Int = 0) {
            (self.heads, self.kvHeads, self.ffnWidth, self.lowRankLinears) = (heads, kvHeads, ffnWidth, lowRankLinears)
        }
    }

    /// Size facts of one model.
    public struct Summary: Sendable, Codable, Equatable {
        /// Every parameter element (embedding, blocks, final norm, untied head).
        public var parameters: Int
        /// The elements that are not exactly zero (what pruning removed shows here, not in `parameters`).
        public var nonZeroParameters: Int
        /// Per block, in order.
        public var blockShapes: [BlockShape]
    }

    /// How far model B's residual stream is from model A's on the same windows.
    public struct Drift: Sendable, Codable, Equatable {
        /// Per block `‖h_B − h_A‖ / ‖h_A‖` of the residual stream after the block (Frobenius norms over every
        /// window and position), each model running on its own stream; nil when the block counts differ.
        public var perBlock: [Double]?
        /// The same for the final normed hidden states (what the head sees); defined for any two models.
        public var final: Double

        /// A drift from its parts.
        public init(perBlock: [Double]?, final: Double) { (self.perBlock, self.final) = (perBlock, final) }
    }

    /// The summary of `model`.
    public static func summary(of model: Model) -> Summary {
        var tensors = [model.embedding, model.finalNorm]
        // A tensor several blocks share (a cross-layer factor) counts once, under its first path, as in `parameterCount`.
        let aliases = Set(model.sharedParameterGroups.flatMap { $0.dropFirst() })
        for (i, block) in model.blocks.enumerated() {
            for (name, t) in block.parameters where !aliases.contains(Model.path(block: i, name)) { tensors.append(t) }
        }
        if let head = model.outputHead { tensors.append(head) }
        let zeros = tensors.reduce(0) { $0 + ZeroWeightCount.zeros(in: $1) }
        let shapes = model.blocks.map { b in
            let a = LlamaBlock.attentionSizes(of: b)
            return BlockShape(heads: a?.heads ?? 0, kvHeads: a?.kvHeads ?? 0, ffnWidth: LlamaBlock.gateWidth(of: b) ?? 0,
                              lowRankLinears: LlamaBlock.lowRankLinearCount(of: b))
        }
        return Summary(parameters: model.parameterCount, nonZeroParameters: model.parameterCount - zeros, blockShapes: shapes)
    }

    /// Two models whose residual streams cannot be compared.
    public struct Incomparable: Error, CustomStringConvertible {
        /// Why.
        public let description: String
    }

    /// The drift of `b` from `a` on `windows` (each a token sequence both vocabularies hold). Throws
    /// `Incomparable` when the residual widths differ.
    public static func drift(of b: Model, from a: Model, windows: [[Int32]]) throws -> Drift {
        guard a.config.hiddenSize == b.config.hiddenSize else {
            throw Incomparable(description: "residual widths differ (\(a.config.hiddenSize) and \(b.config.hiddenSize)); block outputs cannot be compared")
        }
        let sameDepth = a.blocks.count == b.blocks.count
        var blockSums = [(difference: Double, reference: Double)](repeating: (0, 0), count: sameDepth ? a.blocks.count : 0)
        var finalSums = (difference: 0.0, reference: 0.0)
        let (runnerA, runnerB) = (ModelRunner(model: a), ModelRunner(model: b))
        for window in windows {
            let statesA = try residualStreams(runnerA, window), statesB = try residualStreams(runnerB, window)
            for i in blockSums.indices {
                let (d, r) = squaredDistance(statesB[i], statesA[i])
                blockSums[i].difference += d
                blockSums[i].reference += r
            }
            let (d, r) = squaredDistance(runnerB.finalNorm(statesB.last!), runnerA.finalNorm(statesA.last!))
            finalSums.difference += d
            finalSums.reference += r
        }
        func ratio(_ s: (difference: Double, reference: Double)) -> Double { s.reference > 0 ? (s.difference / s.reference).squareRoot() : 0 }
        return Drift(perBlock: sameDepth ? blockSums.map(ratio) : nil, final: ratio(finalSums))
    }

    /// The residual stream after each block of `runner`'s model for one sequence (the embedding when it has none).
    static func residualStreams(_ runner: ModelRunner, _ tokens: [Int32]) throws -> [Tensor] {
        var states: [Tensor] = []
        let last = try runner.hiddenStates(tokens, context: ExecutionContext(batch: 1, length: tokens.count)) { states.append($1) }
        return states.isEmpty ? [last] : states
    }

    /// `‖x − y‖²` and `‖y‖²`.
    static func squaredDistance(_ x: Tensor, _ y: Tensor) -> (Double, Double) {
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                var d = 0.0, r = 0.0
                for i in 0..<min(xp.count, yp.count) {
                    let e = Double(xp[i]) - Double(yp[i])
                    d += e * e
                    r += Double(yp[i]) * Double(yp[i])
                }
                return (d, r)
            }
        }
    }
}
