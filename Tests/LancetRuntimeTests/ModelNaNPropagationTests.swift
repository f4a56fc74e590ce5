import Lancet
import XCTest

/// A NaN weight must show in what the model computes: the perplexity of a tiny model whose query
/// projection holds a NaN is NaN, and generation refuses NaN logits instead of picking a token.
final class ModelNaNPropagationTests: XCTestCase {
    /// A seeded tiny model with block `block`'s parameter `name` set to NaN: every element, or only
    /// the element of flat index `index`.
    func tinyModel(nanIn name: String, block: Int = 0, at index: Int? = nil) -> Model {
        var model = TinyLlama.make(seed: 23)
        if let index {
            model.blocks[block].parameters[name]![flat: index] = .nan
        } else {
            model.blocks[block].parameters[name]!.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        }
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
        let broken = try PerplexityEvaluator(model: tinyModel(nanIn: "attn.q.weight"), context: 32).evaluate(tokens: data)
        XCTAssertTrue(broken.perplexity.isNaN, "perplexity \(broken.perplexity) with an all-NaN q weight")
        XCTAssertTrue(broken.windowNLL.allSatisfy(\.isNaN), "window NLLs \(broken.windowNLL)")
    }

    func testRealModelWithAllNaNQueryWeightsInOneBlockHasANaNNLL() throws {
        var model = try RealModel.model()
        let window = try RealModel.numbers("wiki-test-window0-ids.txt").prefix(128).map { Int32($0) }
        XCTAssertTrue(try PerplexityEvaluator(model: model, context: 128).windowNLL(window).isFinite)
        model.blocks[3].parameters["attn.q.weight"]!.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        XCTAssertTrue(try PerplexityEvaluator(model: model, context: 128).windowNLL(window).isNaN)
    }

    func testOneNaNWeightAnywhereInTheModelMakesThePerplexityNaN() throws {
        let data = tokens(2 * 24, seed: 6)
        for (name, block) in [("attn.q.weight", 1), ("attn.k.weight", 0), ("attn.v.weight", 1), ("attn.o.weight", 0),
                              ("attn_norm.weight", 0), ("mlp.gate.weight", 1), ("mlp.up.weight", 0), ("mlp.down.weight", 1)] {
            let model = tinyModel(nanIn: name, block: block, at: 0)
            let result = try PerplexityEvaluator(model: model, context: 24).evaluate(tokens: data)
            XCTAssertTrue(result.perplexity.isNaN, "block \(block) \(name): perplexity \(result.perplexity)")
        }
    }

    func testNLLOfANaNLogitIsNaNEvenWhenItIsNotTheTarget() throws {
        var model = TinyLlama.make(seed: 23)
        model.embedding[17, 3] = .nan  // tied head: logit 17 of every position is NaN, token 17 is never read
        let window = tokens(24, seed: 7).map { $0 == 17 ? 18 : $0 }
        let evaluator = PerplexityEvaluator(model: model, context: 24)
        XCTAssertTrue(try evaluator.windowNLL(window).isNaN)
    }

    func testGeneratorRefusesNaNLogitsWithAnErrorInsteadOfPickingAToken() throws {
        let model = tinyModel(nanIn: "attn.q.weight", at: 5 * 48 + 7)
        for temperature: Float in [0, 0.8] {
            var sampler = Sampler(temperature: temperature, topP: 0.9, seed: 1)
            var emitted: [Int32] = []
            XCTAssertThrowsError(try Generator(model: model).generate(prompt: [1, 2, 3], maxTokens: 4, sampler: &sampler) {
                emitted.append($0); return true
            }) { error in
                guard case RuntimeError.notANumber = error else { return XCTFail("unexpected error \(error)") }
                XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
            }
            XCTAssertEqual(emitted, [], "temperature \(temperature)")
        }
    }

    func testDecodingAfterANaNKeyInTheCacheGivesNaNLogits() throws {
        var model = TinyLlama.make(seed: 23)
        let prompt = tokens(10, seed: 8)
        model.embedding[Int(prompt[2]), 0] = .nan  // that token's hidden state, so its cached key and value, are NaN
        let runner = ModelRunner(model: model)
        let cache = KVCache(capacity: 12)
        let first = try runner.nextTokenLogits(prompt, cache: cache)
        XCTAssertTrue(first.allSatisfy(\.isNaN))
        let step = try runner.nextTokenLogits([4], startPosition: 10, cache: cache)
        XCTAssertTrue(step.allSatisfy(\.isNaN), "the new token attends to the NaN key in the cache")
    }

    func testSamplerPicksTheFirstNaNLogitAndOtherwiseTheFirstLargest() {
        var greedy = Sampler()
        XCTAssertEqual(greedy.next([0.5, 2, -1, 2]), 1)
        XCTAssertEqual(greedy.next([0.5, 2, .nan, 3, .nan]), 2)
        var sampling = Sampler(temperature: 1, topP: 1, seed: 3)
        XCTAssertEqual(sampling.next([9, .nan, 1]), 1)
    }
}
