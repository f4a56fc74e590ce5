import Foundation
import XCTest
import LancetTensor
@testable import LancetIO

final class HuggingFaceConfigTensorNameTests: XCTestCase {
    func testLlamaNamesAreTheHuggingFaceOnes() {
        XCTAssertEqual(LlamaTensorNames.embedding, "model.embed_tokens.weight")
        XCTAssertEqual(LlamaTensorNames.finalNorm, "model.norm.weight")
        XCTAssertEqual(LlamaTensorNames.outputHead, "lm_head.weight")
        XCTAssertEqual(LlamaTensorNames.attention(7, .query), "model.layers.7.self_attn.q_proj.weight")
        XCTAssertEqual(LlamaTensorNames.attention(7, .key, bias: true), "model.layers.7.self_attn.k_proj.bias")
        XCTAssertEqual(LlamaTensorNames.attention(0, .output), "model.layers.0.self_attn.o_proj.weight")
        XCTAssertEqual(LlamaTensorNames.mlp(29, .down), "model.layers.29.mlp.down_proj.weight")
        XCTAssertEqual(LlamaTensorNames.attentionNorm(3), "model.layers.3.input_layernorm.weight")
        XCTAssertEqual(LlamaTensorNames.mlpNorm(3), "model.layers.3.post_attention_layernorm.weight")
    }

    func testSmolLM2HasTiedHeadAndNoBiases() throws {
        let c = try LlamaFamilyConfig(json: Data(HuggingFaceConfigTests.smolLM2.utf8))
        let names = LlamaTensorNames.allTensors(config: c)
        XCTAssertEqual(names.count, 1 + 30 * 9 + 1)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertFalse(names.contains("lm_head.weight"))
        XCTAssertFalse(names.contains { $0.hasSuffix(".bias") })
        let shapes = LlamaTensorNames.shapes(config: c)
        XCTAssertEqual(Set(shapes.keys), Set(names))
        XCTAssertEqual(shapes["model.embed_tokens.weight"], [49152, 576])
        XCTAssertEqual(shapes["model.layers.0.self_attn.q_proj.weight"], [576, 576])
        XCTAssertEqual(shapes["model.layers.0.self_attn.k_proj.weight"], [192, 576])
        XCTAssertEqual(shapes["model.layers.0.self_attn.o_proj.weight"], [576, 576])
        XCTAssertEqual(shapes["model.layers.29.mlp.down_proj.weight"], [576, 1536])
    }

    func testQwen2HasQKVBiasesButNoOutputBias() throws {
        let c = try LlamaFamilyConfig(json: Data(HuggingFaceConfigTests.qwen2.utf8))
        let layer = LlamaTensorNames.layerTensors(0, config: c)
        XCTAssertTrue(layer.contains("model.layers.0.self_attn.q_proj.bias"))
        XCTAssertTrue(layer.contains("model.layers.0.self_attn.v_proj.bias"))
        XCTAssertFalse(layer.contains("model.layers.0.self_attn.o_proj.bias"))
        XCTAssertEqual(LlamaTensorNames.shapes(config: c)["model.layers.0.self_attn.k_proj.bias"], [128])
    }

    /// llama.cpp's `w.reshape(heads, 2, headDim/2, rest).swapaxes(1, 2).reshape(w.shape)`, written as a loop.
    func llamaCppPermute(_ w: [Float], heads: Int, headDim: Int, rowLength: Int) -> [Float] {
        var out = w
        let half = headDim / 2
        for h in 0..<heads { for s in 0..<2 { for j in 0..<half { for k in 0..<rowLength {
            out[((h * half + j) * 2 + s) * rowLength + k] = w[((h * 2 + s) * half + j) * rowLength + k]
        } } } }
        return out
    }

    func testRopePermutationMatchesLlamaCppAndIsInvertible() {
        var rng = TestRNG(seed: 5)
        for (heads, headDim, rowLength) in [(1, 2, 1), (1, 4, 3), (3, 8, 5), (9, 64, 2), (2, 6, 0)] {
            for rank1 in [false, true] {  // a weight matrix, and a bias vector
                let shape = rank1 ? [heads * headDim] : [heads * headDim, rowLength]
                let w = makeTensor(shape) { Float(Int(rng.next() % 1000)) }
                let adjacent = RopePairing.permuteRows(w, heads: heads, headDim: headDim, from: .halves, to: .adjacent)
                XCTAssertEqual(adjacent.scalars, llamaCppPermute(w.scalars, heads: heads, headDim: headDim, rowLength: rank1 ? 1 : rowLength), "\(shape)")
                let back = RopePairing.permuteRows(adjacent, heads: heads, headDim: headDim, from: .adjacent, to: .halves)
                XCTAssertEqual(back, w, "halves → adjacent → halves is the identity for \(shape)")
                let there = RopePairing.permuteRows(w, heads: heads, headDim: headDim, from: .adjacent, to: .halves)
                XCTAssertEqual(RopePairing.permuteRows(there, heads: heads, headDim: headDim, from: .halves, to: .adjacent), w)
                XCTAssertEqual(RopePairing.permuteRows(w, heads: heads, headDim: headDim, from: .halves, to: .halves), w)
            }
        }
        // One head of dimension 4: halves rows (a0, a1, b0, b1) pair a_j with b_j; adjacent interleaves them.
        let w = Tensor(shape: [4], [0, 1, 2, 3])
        XCTAssertEqual(RopePairing.permuteRows(w, heads: 1, headDim: 4, from: .halves, to: .adjacent).scalars, [0, 2, 1, 3])
        let w8 = Tensor(shape: [8], [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(RopePairing.permuteRows(w8, heads: 1, headDim: 8, from: .halves, to: .adjacent).scalars, [0, 4, 1, 5, 2, 6, 3, 7])
    }
}
