import Lancet
import XCTest

/// A NaN weight must show in what the model computes: the perplexity of a tiny model whose query
/// projection holds a NaN is NaN, and generation refuses NaN logits instead of picking a token.
final class NaNPropagationTests: XCTestCase {
    /// A seeded tiny model with `value` written at `index` of block `block`'s parameter `name`
    /// (every element when `index` is nil).
    func tinyModel(setting name: String, block: Int = 0, index: Int? = nil, to value: Float) -> Model {
        var model = TinyLlama.make(seed: 23)
        var w = model.blocks[block].parameters[name]!
        w.withUnsafeMutableBufferPointer { p in
            if let index { p[index] = value } else { p.update(repeating: value) }
        }
        model.blocks[block].parameters[name] = w
        return model
    }

    /// Seeded token ids inside the tiny vocabulary.
    func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32(g.nextIndex(below: 64)) }
    }

    func testTinyModelWithAllNaNQueryWeightsHasNaNPerplexity() throws {
        let data = tokens(4 * 32, seed: 5)
        let clean = try PerplexityEvaluator(model: TinyLlama.make(seed: 23), context: 32).evaluate(tokens: data)
        XCTAssertTrue(clean.perplexity.isFinite, "the unmutated model has a finite perplexity \(clean.perplexity)")
        let broken = try PerplexityEvaluator(model: tinyModel(setting: "attn.q.weight", to: .nan), context: 32).evaluate(tokens: data)
        XCTAssertTrue(broken.perplexity.isNaN, "perplexity \(broken.perplexity) with an all-NaN q weight")
        XCTAssertTrue(broken.windowNLL.allSatisfy(\.isNaN), "window NLLs \(broken.windowNLL)")
    }
}
