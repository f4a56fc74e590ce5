import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Mixture-of-experts export: equal-width experts become Mixtral-style 3-D tensors; what llama.cpp's
/// llama architecture cannot express (shared experts, unequal widths, MoE mixed with dense) is refused
/// with an error naming the block.
final class ExportMoETests: XCTestCase {
    typealias S = ExportTestSupport

    /// Replaces block `i`'s MLP by a mixture of `experts` SwiGLU experts of the given widths.
    private func makeMoE(_ model: inout Model, block i: Int, widths: [Int], topK: Int = 2, shared: Bool = false, seed: UInt64 = 1) {
        var g = SeededGenerator(seed: seed)
        let h = model.config.hiddenSize
        func w(_ r: Int, _ c: Int) -> Tensor { Tensor.randomNormal(shape: [r, c], std: 1 / Float(c).squareRoot(), generator: &g) }
        let old = model.blocks[i]
        var p = old.parameters.filter { !$0.key.hasPrefix("mlp.") }
        p["moe.router.weight"] = w(widths.count, h)
        for (e, width) in widths.enumerated() {
            p["moe.experts.\(e).gate.weight"] = w(width, h)
            p["moe.experts.\(e).up.weight"] = w(width, h)
            p["moe.experts.\(e).down.weight"] = w(h, width)
        }
        if shared {
            p["moe.shared.gate.weight"] = w(16, h)
            p["moe.shared.up.weight"] = w(16, h)
            p["moe.shared.down.weight"] = w(h, 16)
        }
        var b = LlamaBlock.make(attention: LlamaBlock.attentionSizes(of: old), hasMLP: false, epsilon: Float(model.config.normEpsilon),
                                rope: model.config.rope, parameters: p)
        let residual = b.output
        b.nodes += [
            Node("mlp_norm", RMSNormOp(weight: "mlp_norm.weight", epsilon: Float(model.config.normEpsilon)), inputs: [residual], outputs: ["mlp_in"]),
            Node("moe", MoEOp(prefix: "moe", experts: widths.count, topK: topK, hasSharedExpert: shared), inputs: ["mlp_in"], outputs: ["mlp_out"]),
            Node("mlp.residual", AddOp(), inputs: [residual, "mlp_out"], outputs: ["y"]),
        ]
        b.output = "y"
        model.blocks[i] = b
    }

    func testEqualWidthExpertsBecomeMixtralStyleTensors() throws {
        var model = TinyLlama.make(seed: 1)
        for i in 0..<2 { makeMoE(&model, block: i, widths: [32, 32, 32, 32], seed: UInt64(i)) }
        try Verifier.verify(model)
        let path = S.temporaryPath("moe.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.string("general.architecture"), "llama")
        XCTAssertEqual(file.int("llama.expert_count"), 4)
        XCTAssertEqual(file.int("llama.expert_used_count"), 2)
        XCTAssertEqual(file.int("llama.feed_forward_length"), 32)
        // llama.cpp's shapes (ggml order): gate_inp {n_embd, n_expert}, gate/up {n_embd, n_ff, n_expert}, down {n_ff, n_embd, n_expert}.
        XCTAssertEqual(file.info("blk.1.ffn_gate_inp.weight")?.dimensions, [48, 4])
        XCTAssertEqual(file.info("blk.1.ffn_gate_exps.weight")?.dimensions, [48, 32, 4])
        XCTAssertEqual(file.info("blk.1.ffn_up_exps.weight")?.dimensions, [48, 32, 4])
        XCTAssertEqual(file.info("blk.1.ffn_down_exps.weight")?.dimensions, [32, 48, 4])
        XCTAssertNil(file.info("blk.1.ffn_gate.weight"))
        // Expert 2's down projection is the third slab of the stacked tensor.
        let stacked = try file.tensor("blk.1.ffn_down_exps.weight").scalars
        let expert = model.blocks[1].parameters["moe.experts.2.down.weight"]!.scalars
        XCTAssertEqual(Array(stacked[(2 * expert.count)..<(3 * expert.count)]), expert)
        XCTAssertEqual(try file.tensor("blk.1.ffn_gate_inp.weight"), model.blocks[1].parameters["moe.router.weight"]!)
    }

    func testSharedExpertIsRefusedNamingTheBlock() throws {
        var model = TinyLlama.make(seed: 2)
        makeMoE(&model, block: 0, widths: [32, 32], topK: 1)
        makeMoE(&model, block: 1, widths: [32, 32], topK: 1, shared: true)
        try Verifier.verify(model)
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("shared.gguf"))) { e in
            let error = e as? ModelExportError
            XCTAssertEqual(error?.block, 1, "\(e)")
            XCTAssertTrue(error?.reason.contains("shared expert") == true, "\(e)")
        }
    }

    func testUnequalExpertWidthsAreRefusedNamingTheBlock() throws {
        var model = TinyLlama.make(seed: 3)
        makeMoE(&model, block: 0, widths: [32, 32])
        makeMoE(&model, block: 1, widths: [32, 16])
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("widths.gguf"))) { e in
            XCTAssertEqual((e as? ModelExportError)?.block, 1, "\(e)")
            XCTAssertTrue("\(e)".contains("different widths"), "\(e)")
        }
    }

    func testMoEMixedWithDenseBlocksIsRefused() throws {
        var model = TinyLlama.make(seed: 4)
        makeMoE(&model, block: 1, widths: [32, 32])
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("mixed.gguf"))) { e in
            XCTAssertEqual((e as? ModelExportError)?.block, 0, "\(e)")
            XCTAssertTrue("\(e)".contains("mixtures of experts"), "\(e)")
        }
    }

    func testHuggingFaceExportRefusesMoE() throws {
        var model = TinyLlama.make(seed: 5)
        for i in 0..<2 { makeMoE(&model, block: i, widths: [32, 32]) }
        XCTAssertThrowsError(try HuggingFaceExporter.write(model, to: S.temporaryPath("moe-hf"))) { e in
            XCTAssertTrue("\(e)".contains("mixture of experts") && "\(e)".contains("GGUF"), "\(e)")
        }
    }
}
