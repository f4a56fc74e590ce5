import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// Mixture-of-experts export: equal-width experts become Mixtral-style 3-D tensors that load back to the same mixture;
/// a shared expert joins every routed expert; what llama.cpp's llama architecture cannot express (unit weights on
/// several experts, unequal widths, MoE mixed with dense) is refused with an error naming the block.
final class ExportMoETests: XCTestCase {
    typealias S = ExportTestSupport

    /// Replaces block `i`'s MLP by a mixture of `experts` SwiGLU experts of the given widths.
    static func makeMoE(_ model: inout Model, block i: Int, widths: [Int], topK: Int = 2, shared: Bool = false, seed: UInt64 = 1) {
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
        for i in 0..<2 { Self.makeMoE(&model, block: i, widths: [32, 32, 32, 32], seed: UInt64(i)) }
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

    /// The logits of `model` and of `other` on the same tokens differ by at most `tolerance`.
    private func assertSameLogits(_ model: Model, _ other: Model, tolerance: Float, file: StaticString = #filePath, line: UInt = #line) throws {
        let tokens: [Int32] = [1, 7, 3, 22, 9, 14, 5, 30, 2, 11]
        let want = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        let got = try ModelRunner(model: other).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        XCTAssertLessThan(zip(want, got).map { abs($0 - $1) }.max()!, tolerance, file: file, line: line)
    }

    /// A Mixtral-style GGUF loads back as the same mixture: router and every expert's tensors equal, same logits.
    func testAMixtureExportLoadsBackToTheSameTensors() throws {
        var model = TinyLlama.make(seed: 6)
        for i in 0..<2 { Self.makeMoE(&model, block: i, widths: [32, 32, 32], seed: UInt64(10 + i)) }
        let path = S.temporaryPath("roundtrip-moe.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path)
        let loaded = try ModelLoader.load(path)
        for (i, block) in loaded.blocks.enumerated() {
            let op = try XCTUnwrap(block.node(LlamaBlock.mixtureNode)?.op as? MoEOp, "block \(i)")
            XCTAssertEqual([op.experts, op.topK], [3, 2])
            XCTAssertTrue(op.normalizeTopK && op.router == .linear && op.weighting == .softmax && !op.hasSharedExpert)
            XCTAssertEqual(block.parameters[op.routerNames[0]], model.blocks[i].parameters["moe.router.weight"])
            for e in 0..<3 {
                let n = op.expertNames(e)
                XCTAssertEqual(block.parameters[n.gate], model.blocks[i].parameters["moe.experts.\(e).gate.weight"])
                XCTAssertEqual(block.parameters[n.up], model.blocks[i].parameters["moe.experts.\(e).up.weight"])
                XCTAssertEqual(block.parameters[n.down], model.blocks[i].parameters["moe.experts.\(e).down.weight"])
            }
        }
        try assertSameLogits(model, loaded, tolerance: 1e-4)
    }

    /// llama.cpp's llama architecture has no shared expert: its channels join every routed expert, which is exact because
    /// the chosen experts' weights sum to one (top-2 renormalised here). The file loads back to the same logits.
    func testASharedExpertFoldsIntoEveryRoutedExpert() throws {
        var model = TinyLlama.make(seed: 2)
        for i in 0..<2 { Self.makeMoE(&model, block: i, widths: [32, 32, 32], topK: 2, shared: true, seed: UInt64(20 + i)) }
        try Verifier.verify(model)
        let path = S.temporaryPath("shared.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.int("llama.feed_forward_length"), 48)
        XCTAssertNil(file.info("blk.0.ffn_gate_shexp.weight"))
        let loaded = try ModelLoader.load(path)
        XCTAssertEqual((loaded.blocks[1].node(LlamaBlock.mixtureNode)?.op as? MoEOp)?.hasSharedExpert, false)
        try assertSameLogits(model, loaded, tolerance: 1e-4)
    }

    /// Unit weights on more than one chosen expert are not llama.cpp's renormalised softmax: refused, naming the block.
    func testUnitWeightsOnTwoExpertsAreRefusedNamingTheBlock() throws {
        var model = TinyLlama.make(seed: 2)
        for i in 0..<2 { Self.makeMoE(&model, block: i, widths: [32, 32], topK: i == 0 ? 1 : 2) }
        for i in 0..<2 {
            let node = model.blocks[i].nodeIndex("moe")!
            var op = model.blocks[i].nodes[node].op as! MoEOp
            op.weighting = .unit
            model.blocks[i].nodes[node].op = op
        }
        try Verifier.verify(model)
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("unit.gguf"))) { e in
            let error = e as? ModelExportError
            XCTAssertEqual(error?.block, 1, "\(e)")
            XCTAssertTrue(error?.reason.contains("weight 1") == true, "\(e)")
        }
    }

    func testUnequalExpertWidthsAreRefusedNamingTheBlock() throws {
        var model = TinyLlama.make(seed: 3)
        Self.makeMoE(&model, block: 0, widths: [32, 32])
        Self.makeMoE(&model, block: 1, widths: [32, 16])
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("widths.gguf"))) { e in
            XCTAssertEqual((e as? ModelExportError)?.block, 1, "\(e)")
            XCTAssertTrue("\(e)".contains("different widths"), "\(e)")
        }
    }

    func testMoEMixedWithDenseBlocksIsRefused() throws {
        var model = TinyLlama.make(seed: 4)
        Self.makeMoE(&model, block: 1, widths: [32, 32])
        XCTAssertThrowsError(try GGUFExporter.write(model, to: S.temporaryPath("mixed.gguf"))) { e in
            XCTAssertEqual((e as? ModelExportError)?.block, 0, "\(e)")
            XCTAssertTrue("\(e)".contains("mixtures of experts"), "\(e)")
        }
    }

    /// Mixtures of experts export to Hugging Face in Mixtral's layout: config and tensor names transformers reads, a
    /// shared expert folded into every routed expert; a mixture mixed with dense blocks is refused, naming the block.
    func testHuggingFaceExportWritesMixtral() throws {
        var model = TinyLlama.make(seed: 5)
        for i in 0..<2 { Self.makeMoE(&model, block: i, widths: [32, 32, 32], topK: 2, shared: true, seed: UInt64(30 + i)) }
        let folder = S.temporaryPath("moe-hf")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HuggingFaceExporter.write(model, to: folder)
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))) as? [String: Any])
        XCTAssertEqual(config["model_type"] as? String, "mixtral")
        XCTAssertEqual(config["architectures"] as? [String], ["MixtralForCausalLM"])
        XCTAssertEqual(config["num_local_experts"] as? Int, 3)
        XCTAssertEqual(config["num_experts_per_tok"] as? Int, 2)
        XCTAssertEqual(config["intermediate_size"] as? Int, 48, "32 routed channels + 16 shared")
        let file = try SafetensorsFile(path: folder + "/model.safetensors")
        let block = model.blocks[1]
        XCTAssertEqual(try file.tensor("model.layers.1.block_sparse_moe.gate.weight"), block.parameters["moe.router.weight"])
        let w1 = try file.tensor("model.layers.1.block_sparse_moe.experts.2.w1.weight")
        XCTAssertEqual(w1, Tensor.concatenatingRows(block.parameters["moe.experts.2.gate.weight"]!, block.parameters["moe.shared.gate.weight"]!))
        let w2 = try file.tensor("model.layers.1.block_sparse_moe.experts.2.w2.weight")
        XCTAssertEqual(w2, Tensor.concatenatingColumns(block.parameters["moe.experts.2.down.weight"]!, block.parameters["moe.shared.down.weight"]!))
        XCTAssertNotNil(file.info("model.layers.0.block_sparse_moe.experts.0.w3.weight"))
        XCTAssertNil(file.info("model.layers.0.mlp.gate_proj.weight"))

        var mixed = TinyLlama.make(seed: 5)
        Self.makeMoE(&mixed, block: 1, widths: [32, 32])
        XCTAssertThrowsError(try HuggingFaceExporter.write(mixed, to: S.temporaryPath("mixed-hf"))) { e in
            XCTAssertEqual((e as? ModelExportError)?.block, 0, "\(e)")
            XCTAssertTrue("\(e)".contains("dense MLP") && "\(e)".contains("Mixtral"), "\(e)")
        }
    }
}
