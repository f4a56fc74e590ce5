import Foundation
import Lancet
import XCTest

/// Decoding token by token through the KV cache (one-row matrix–vector products, one-query attention) gives,
/// at every position, the logits that prefilling the whole sequence gives at that position: for dense blocks,
/// blocks of different widths and without attention, low-rank linears, mixture-of-experts blocks, and the real model.
final class DecodeMatchesPrefillTests: XCTestCase {
    /// Sizes large enough that the decode products split their rows over every core.
    static let sizes: TinyLlama.Sizes = {
        var s = TinyLlama.Sizes()
        (s.hidden, s.blocks, s.heads, s.kvHeads, s.ffn, s.vocabulary) = (128, 3, 4, 2, 384, 512)
        return s
    }()

    /// max |decode − prefill| over max |prefill| at each position, for a prompt of one token then one token per step.
    func worstRelativeError(_ model: Model, tokens: [Int32]) throws -> (error: Double, position: Int) {
        let runner = ModelRunner(model: model)
        let full = try runner.logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count))
        let cache = KVCache(capacity: tokens.count)
        var worst = (error: 0.0, position: 0)
        for p in tokens.indices {
            let step = try runner.nextTokenLogits([tokens[p]], startPosition: p, cache: cache)
            let want = full.slicingRows(p..<(p + 1)).scalars
            let scale = want.map { abs(Double($0)) }.max()!
            let error = zip(step, want).map { abs(Double($0) - Double($1)) }.max()! / scale
            if error > worst.error { worst = (error, p) }
        }
        return worst
    }

    /// One token through a dense block runs its SwiGLU feed-forward as one fused step (one hand-off to the cores in
    /// place of three), whose output is the five nodes' output bit for bit; capturing a value inside the feed-forward
    /// runs the nodes one by one.
    func testTheFusedFeedForwardStepGivesTheNodesValues() throws {
        let model = TinyLlama.make(Self.sizes, seed: 33)
        var g = SeededGenerator(seed: 5)
        for block in model.blocks {
            let x = Tensor.randomNormal(shape: [1, Self.sizes.hidden], std: 1, generator: &g)
            let timed = ExecutionContext(batch: 1, length: 1)
            timed.opSeconds = [:]
            let fused = try BlockExecutor.forward(block, input: x, context: timed).output
            XCTAssertNotNil(timed.opSeconds?["mlp (fused)"], "the fused step ran")
            XCTAssertNil(timed.opSeconds?["silu"], "no silu node ran on its own")
            let nodes = ExecutionContext(batch: 1, length: 1)
            nodes.opSeconds = [:]
            let plain = try BlockExecutor.forward(block, input: x, context: nodes, capture: ["act"]).output
            XCTAssertNotNil(nodes.opSeconds?["silu"], "capturing a value inside runs the nodes")
            XCTAssertEqual(fused.scalars, plain.scalars)
        }
    }

    func tokens(_ count: Int, vocabulary: Int, seed: UInt64) -> [Int32] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32(g.nextIndex(below: vocabulary)) }
    }

    func testDenseBlocks() throws {
        let model = TinyLlama.make(Self.sizes, seed: 31)
        let worst = try worstRelativeError(model, tokens: tokens(40, vocabulary: 512, seed: 1))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }

    /// A sequence longer than two chunks of decoding's attention (`oneQueryChunkPositions` cached positions each):
    /// the chunks' partial softmaxes combine into the prefill's attention at every position.
    func testDenseBlocksAcrossAttentionChunks() throws {
        let model = TinyLlama.make(Self.sizes, seed: 34)
        let worst = try worstRelativeError(model, tokens: tokens(2 * oneQueryChunkPositions + 20, vocabulary: 512, seed: 6))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }

    /// Block 0 keeps 3 of 4 heads (one KV group less) and 200 channels, block 1 has no attention, block 2 no MLP.
    func testBlocksOfDifferentWidths() throws {
        var model = TinyLlama.make(Self.sizes, seed: 32)
        model.blocks[0] = try BlockSlicing.slice(model.blocks[0], .init(keptHeads: [0, 1], keptKVHeads: [0], keptChannels: Array(0..<200)))
        model.blocks[1] = try BlockSlicing.slice(model.blocks[1], .init(removeAttention: true))
        model.blocks[2] = try BlockSlicing.slice(model.blocks[2], .init(removeMLP: true))
        try Verifier.verify(model)
        let worst = try worstRelativeError(model, tokens: tokens(40, vocabulary: 512, seed: 2))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }

    /// Block 1's MLP replaced by 4 routed experts of 96 channels (top 2) and a shared one.
    /// Every linear factorised (ragged ranks, some below a worker's share of the one-hand-off low-rank kernel).
    func testLowRankBlocks() throws {
        var model = TinyLlama.make(Self.sizes, seed: 34)
        for b in model.blocks.indices {
            for (k, name) in ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"].enumerated() {
                let w = model.blocks[b].parameters[name + ".weight"]!
                let factors = try LowRankFactors.truncate(w, weighting: .none, rank: 19 + 13 * k + 7 * b)
                model.blocks[b].factorise(linear: name, into: factors)
            }
        }
        try Verifier.verify(model)
        let worst = try worstRelativeError(model, tokens: tokens(40, vocabulary: 512, seed: 4))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }

    func testMixtureOfExpertsBlocks() throws {
        var model = TinyLlama.make(Self.sizes, seed: 33)
        var g = SeededGenerator(seed: 3)
        let h = Self.sizes.hidden
        func w(_ r: Int, _ c: Int) -> Tensor { Tensor.randomNormal(shape: [r, c], std: 1 / Float(c).squareRoot(), generator: &g) }
        let old = model.blocks[1]
        var p = old.parameters.filter { !$0.key.hasPrefix("mlp.") }
        p["moe.router.weight"] = w(4, h)
        for base in (0..<4).map({ "moe.experts.\($0)" }) + ["moe.shared"] {
            p[base + ".gate.weight"] = w(96, h); p[base + ".up.weight"] = w(96, h); p[base + ".down.weight"] = w(h, 96)
        }
        var b = LlamaBlock.make(attention: LlamaBlock.attentionSizes(of: old), hasMLP: false, epsilon: Float(model.config.normEpsilon),
                                rope: model.config.rope, parameters: p)
        let residual = b.output
        b.nodes += [
            Node("mlp_norm", RMSNormOp(weight: "mlp_norm.weight", epsilon: Float(model.config.normEpsilon)), inputs: [residual], outputs: ["mlp_in"]),
            Node("moe", MoEOp(prefix: "moe", experts: 4, topK: 2, hasSharedExpert: true), inputs: ["mlp_in"], outputs: ["mlp_out"]),
            Node("mlp.residual", AddOp(), inputs: [residual, "mlp_out"], outputs: ["y"]),
        ]
        b.output = "y"
        model.blocks[1] = b
        try Verifier.verify(model)
        let worst = try worstRelativeError(model, tokens: tokens(40, vocabulary: 512, seed: 4))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }

    /// SmolLM2 on the first 48 tokens of a sentence: the runtime's real shapes (576-wide rows, the 49152-row head).
    func testTheRealModel() throws {
        let model = try RealModel.model()
        let text = "The history of the city begins in the Roman period, when a small settlement grew around the river crossing and later became a market town."
        var ids = try XCTUnwrap(model.tokenizer).encodeText(text, addSpecialTokens: false, parseSpecial: false)
        while ids.count < 48 { ids += ids }
        let worst = try worstRelativeError(model, tokens: Array(ids.prefix(48)))
        XCTAssertLessThanOrEqual(worst.error, 1e-4, "position \(worst.position)")
    }
}

/// The runtime with 16-bit copies of the weights: decode still equals prefill, and the real model's perplexity
/// moves by less than 0.5%.
final class HalfWeightsTests: XCTestCase {
    func testDecodeEqualsPrefillWith16BitWeights() throws {
        let model = TinyLlama.make(DecodeMatchesPrefillTests.sizes, seed: 34)
        var g = SeededGenerator(seed: 5)
        let tokens = (0..<24).map { _ in Int32(g.nextIndex(below: 512)) }
        for precision in [WeightPrecision.f16, .bf16] {
            let runner = ModelRunner(model: model, precision: precision)
            let full = try runner.logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count))
            let cache = KVCache(capacity: tokens.count)
            for p in tokens.indices {
                let step = try runner.nextTokenLogits([tokens[p]], startPosition: p, cache: cache)
                let want = full.slicingRows(p..<(p + 1)).scalars
                let error = zip(step, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!
                XCTAssertLessThanOrEqual(error, 1e-4, "\(precision) position \(p)")
            }
            // The copies are really used: the logits differ from Float's, by rounding only.
            let exact = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count))
            let difference = zip(full.scalars, exact.scalars).map { abs($0 - $1) }.max()! / exact.scalars.map(abs).max()!
            XCTAssertGreaterThan(difference, 0, "\(precision)")
            XCTAssertLessThan(difference, precision == .f16 ? 1e-2 : 5e-2, "\(precision)")
        }
    }

    /// Copies exist for exactly the model's matrices (the head and every rank-2 block parameter), found by storage.
    func testCopiesServeOnlyTheModelsOwnMatrices() {
        let model = TinyLlama.make(DecodeMatchesPrefillTests.sizes, seed: 35)
        let half = HalfWeights(model: model, format: .bf16)
        let q = model.blocks[0].parameters["attn.q.weight"]!
        XCTAssertNotNil(half.matrix(for: q))
        XCTAssertNotNil(half.matrix(for: model.head))
        XCTAssertNil(half.matrix(for: Tensor(shape: q.shape, repeating: 1)), "a tensor of the same shape that is not the model's")
        XCTAssertNil(half.matrix(for: model.blocks[0].parameters["attn_norm.weight"]!), "vectors stay Float")
        var elements = model.head.count
        for b in model.blocks { for (_, t) in b.parameters where t.rank == 2 { elements += t.count } }
        XCTAssertEqual(half.byteCount, 2 * elements)
    }

    /// SmolLM2 on the first 2048 tokens of wiki.test as 4 windows of 512.
    func testRealModelPerplexityMovesLessThanHalfAPercent() throws {
        let model = try RealModel.model()
        let ids = try RealModel.numbers("wiki-test-window0-ids.txt").map { Int32($0) }
        let exact = try PerplexityEvaluator(model: model, context: 512).evaluate(tokens: ids).perplexity
        for precision in [WeightPrecision.f16, .bf16] {
            let half = try PerplexityEvaluator(model: model, context: 512, precision: precision).evaluate(tokens: ids).perplexity
            print("4 × 512 wiki.test windows: f32 \(exact), \(precision) \(half) (\(100 * (half / exact - 1))%)")
            XCTAssertLessThan(abs(half / exact - 1), 0.005, "\(precision)")
        }
    }
}
