import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// Shared helpers for the export tests: surgery on tiny models (slicing heads and FFN rows, removing
/// sub-layers), logits of a fixed prompt, and comparisons that report the largest difference.
enum ExportTestSupport {
    /// A fixed prompt of ids below 64 (every tiny vocabulary has them).
    static let prompt: [Int32] = [1, 7, 3, 42, 9, 15, 0, 63, 22, 5, 5, 31]

    /// Logits after every token of `ids`, flattened (`[ids.count × vocabulary]`).
    static func logits(_ model: Model, _ ids: [Int32] = prompt) throws -> [Float] {
        let context = ExecutionContext(batch: 1, length: ids.count)
        return try ModelRunner(model: model).logits(ids, context: context).scalars
    }

    /// The largest absolute difference and the largest absolute value of `a`.
    static func difference(_ a: [Float], _ b: [Float]) -> (maxDiff: Float, scale: Float) {
        precondition(a.count == b.count, "logit counts differ: \(a.count) vs \(b.count)")
        return (zip(a, b).map { abs($0 - $1) }.max() ?? 0, a.map(abs).max() ?? 0)
    }

    /// Rows `range` of a matrix (or entries of a vector).
    static func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
        let width = t.count / t.shape[0]
        let values = t.scalars
        return Tensor(shape: [range.count] + t.shape.dropFirst(), Array(values[(range.lowerBound * width)..<(range.upperBound * width)]))
    }

    /// Columns `range` of a matrix.
    static func columns(_ t: Tensor, _ range: Range<Int>) -> Tensor {
        let (r, c) = (t.shape[0], t.shape[1])
        let values = t.scalars
        return Tensor(shape: [r, range.count], (0..<r).flatMap { i in values[(i * c + range.lowerBound)..<(i * c + range.upperBound)] })
    }

    /// `block` rebuilt as a Llama block with the given sub-layers and parameters.
    static func rebuild(_ block: Block, model: Model, attention: LlamaBlock.Attention?, hasMLP: Bool, parameters: [String: Tensor]) -> Block {
        LlamaBlock.make(attention: attention, hasMLP: hasMLP, epsilon: Float(model.config.normEpsilon), rope: model.config.rope, parameters: parameters)
    }

    /// Keeps the first `kvHeads` KV heads of block `i` and their query heads, slicing q/k/v rows and o columns.
    static func keepHeads(_ model: inout Model, block i: Int, kvHeads keep: Int) {
        let b = model.blocks[i]
        let a = LlamaBlock.attentionSizes(of: b)!
        let d = a.headDimensions, group = a.heads / a.kvHeads
        var p = b.parameters
        p["attn.q.weight"] = rows(p["attn.q.weight"]!, 0..<(keep * group * d))
        p["attn.k.weight"] = rows(p["attn.k.weight"]!, 0..<(keep * d))
        p["attn.v.weight"] = rows(p["attn.v.weight"]!, 0..<(keep * d))
        p["attn.o.weight"] = columns(p["attn.o.weight"]!, 0..<(keep * group * d))
        let sizes = LlamaBlock.Attention(heads: keep * group, kvHeads: keep, headDimensions: d)
        model.blocks[i] = rebuild(b, model: model, attention: sizes, hasMLP: true, parameters: p)
    }

    /// Keeps the first `width` FFN channels of block `i`.
    static func shrinkFFN(_ model: inout Model, block i: Int, to width: Int) {
        let b = model.blocks[i]
        var p = b.parameters
        p["mlp.gate.weight"] = rows(p["mlp.gate.weight"]!, 0..<width)
        p["mlp.up.weight"] = rows(p["mlp.up.weight"]!, 0..<width)
        p["mlp.down.weight"] = columns(p["mlp.down.weight"]!, 0..<width)
        model.blocks[i] = rebuild(b, model: model, attention: LlamaBlock.attentionSizes(of: b), hasMLP: true, parameters: p)
    }

    /// Removes the attention sub-layer of block `i`.
    static func removeAttention(_ model: inout Model, block i: Int) {
        let b = model.blocks[i]
        let p = b.parameters.filter { !$0.key.hasPrefix("attn") }
        model.blocks[i] = rebuild(b, model: model, attention: nil, hasMLP: LlamaBlock.ffnWidth(of: b) != nil, parameters: p)
    }

    /// Removes the MLP sub-layer of block `i`.
    static func removeMLP(_ model: inout Model, block i: Int) {
        let b = model.blocks[i]
        let p = b.parameters.filter { !$0.key.hasPrefix("mlp") }
        model.blocks[i] = rebuild(b, model: model, attention: LlamaBlock.attentionSizes(of: b), hasMLP: false, parameters: p)
    }

    /// A fresh temporary path.
    static func temporaryPath(_ name: String) -> String { GGUFTestSupport.temporaryPath(name) }
}
