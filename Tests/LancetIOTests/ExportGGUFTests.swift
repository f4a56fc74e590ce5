import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// GGUF export: tiny models written with `GGUFExporter` and read back with `ModelLoader` compute the same
/// logits; heterogeneous models become `deci` files; bad input is refused with a located error.
final class ExportGGUFTests: XCTestCase {
    typealias S = ExportTestSupport

    private func roundTrip(_ model: Model, type: GGUFFileType = .f32, extra: [(String, GGUFValue)] = []) throws -> (Model, GGUFFile) {
        let path = S.temporaryPath("export.gguf")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path, type: type, extraMetadata: extra)
        return (try ModelLoader.load(path), try GGUFFile(path: path))
    }

    func testTinyLlamaRoundTripsBitExactForAdjacentPairingTiedAndUntied() throws {
        for tied in [true, false] {
            var sizes = TinyLlama.Sizes()
            sizes.tied = tied
            let model = TinyLlama.make(sizes, seed: 3, pairing: .adjacent)
            let (back, file) = try roundTrip(model)
            XCTAssertEqual(file.string("general.architecture"), "llama")
            XCTAssertEqual(back.isTied, tied)
            XCTAssertEqual(file.info("output.weight") == nil, tied)
            XCTAssertEqual(try S.logits(back), try S.logits(model), "tied \(tied): F32 export must be bit-exact")
        }
    }

    /// Halves-paired weights are permuted to adjacent; the rotation is the same, but attention sums the
    /// head dimensions in another order, so the logits agree to rounding only.
    func testHalvesPairedModelIsPermutedToAdjacentAndAgreesToRounding() throws {
        for tied in [true, false] {
            var sizes = TinyLlama.Sizes()
            sizes.tied = tied
            let model = TinyLlama.make(sizes, seed: 4, pairing: .halves)
            let (back, _) = try roundTrip(model)
            XCTAssertEqual(back.config.rope.pairing, .adjacent)
            let (diff, scale) = S.difference(try S.logits(model), try S.logits(back))
            XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "tied \(tied): max |Δlogit| \(diff) at scale \(scale)")
            // Permuting back recovers the original rows exactly.
            let d = LlamaBlock.attentionSizes(of: model.blocks[0])!.headDimensions
            let q = RopePairing.permuteRows(back.blocks[0].parameters["attn.q.weight"]!, heads: 4, headDim: d, from: .adjacent, to: .halves)
            XCTAssertEqual(q, model.blocks[0].parameters["attn.q.weight"]!)
        }
    }

    /// F16 rounds each weight to 11 significant bits, Q8_0 to 8 bits per block of 32: the logits of the
    /// re-imported model stay within 1% (F16) and 5% (Q8_0) of the largest logit.
    func testF16AndQ8_0ExportsStayWithinStatedTolerances() throws {
        var sizes = TinyLlama.Sizes()
        (sizes.hidden, sizes.ffn, sizes.tied) = (64, 128, false)
        let model = TinyLlama.make(sizes, seed: 5)
        let reference = try S.logits(model)
        for (fileType, tolerance) in [(GGUFFileType.f16, Float(0.01)), (.q8_0, 0.05)] {
            let type = fileType.baseType
            let (back, file) = try roundTrip(model, type: fileType)
            let (diff, scale) = S.difference(reference, try S.logits(back))
            XCTAssertGreaterThan(diff, 0, "\(type.name) should round something")
            XCTAssertLessThanOrEqual(diff, tolerance * scale, "\(type.name): max |Δlogit| \(diff) at scale \(scale)")
            XCTAssertEqual(file.info("blk.0.attn_q.weight")?.type, type)
            XCTAssertEqual(file.info("token_embd.weight")?.type, type)
            XCTAssertEqual(file.info("blk.0.attn_norm.weight")?.type, .f32, "1-D tensors stay F32")
            XCTAssertEqual(file.int("general.file_type"), type == .f16 ? 1 : 7)
        }
    }

    func testQ8_0FallsBackToF16ForRowsThatAreNotMultiplesOf32() throws {
        let model = TinyLlama.make(seed: 6)  // hidden 48
        let (_, file) = try roundTrip(model, type: .q8_0)
        XCTAssertEqual(file.info("blk.0.attn_q.weight")?.type, .f16, "rows of 48 cannot be Q8_0")
        XCTAssertEqual(file.info("blk.0.ffn_down.weight")?.type, .q8_0, "rows of 96 can")
    }

    func testMetadataDescribesTheModelForLlamaCpp() throws {
        var model = TinyLlama.make(seed: 7)
        model.annotations["general.name"] = "tiny test"
        let (_, file) = try roundTrip(model)
        XCTAssertEqual(file.string("general.name"), "tiny test")
        XCTAssertEqual(file.int("general.file_type"), 0)
        for (key, value) in [("block_count", 2), ("embedding_length", 48), ("feed_forward_length", 96), ("attention.head_count", 4),
                             ("attention.head_count_kv", 2), ("attention.key_length", 12), ("rope.dimension_count", 12),
                             ("context_length", 512), ("vocab_size", 64)] {
            XCTAssertEqual(file.int("llama.\(key)"), value, key)
        }
        XCTAssertEqual(file.metadata["llama.rope.freq_base"], .float32(10000))
        XCTAssertEqual(file.metadata["llama.attention.layer_norm_rms_epsilon"], .float32(1e-5))
        let names = Set(file.tensors.map(\.name))
        for n in ["token_embd.weight", "output_norm.weight", "blk.1.attn_norm.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight",
                  "blk.1.attn_v.weight", "blk.1.attn_output.weight", "blk.1.ffn_norm.weight", "blk.1.ffn_gate.weight",
                  "blk.1.ffn_up.weight", "blk.1.ffn_down.weight"] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertEqual(file.info("blk.0.ffn_down.weight")?.dimensions, [96, 48], "ggml dimensions are innermost first")
    }

    /// One block loses a KV head (and its query heads), one has a narrower FFN, one loses its MLP, one its
    /// attention (block 0, which llama.cpp's deci loader needs as a placeholder), another its attention, and
    /// the last block is dropped: the file is `deci` with per-block sizes, and it reads back bit-exact.
    func testHeterogeneousModelExportsAsDeciAndRoundTripsBitExact() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 6
        var model = TinyLlama.make(sizes, seed: 8)
        S.removeAttention(&model, block: 0)
        S.keepHeads(&model, block: 1, kvHeads: 1)
        S.shrinkFFN(&model, block: 2, to: 40)
        S.removeMLP(&model, block: 3)
        S.removeAttention(&model, block: 4)
        model.blocks.removeLast()
        try Verifier.verify(model)

        let (back, file) = try roundTrip(model)
        XCTAssertEqual(file.string("general.architecture"), "deci")
        XCTAssertEqual(file.int("deci.block_count"), 5)
        func array(_ key: String) -> [Int]? { file.metadata["deci.\(key)"]?.arrayValue?.compactMap(\.intValue) }
        XCTAssertEqual(array("attention.head_count"), [4, 2, 4, 4, 0])
        XCTAssertEqual(array("attention.head_count_kv"), [0, 1, 2, 2, 0])
        XCTAssertEqual(array("feed_forward_length"), [96, 96, 40, 1, 96])
        XCTAssertEqual(file.metadata["lancet.attention_free_blocks"]?.arrayValue?.compactMap(\.intValue), [0])
        XCTAssertEqual(file.metadata["lancet.ffn_free_blocks"]?.arrayValue?.compactMap(\.intValue), [3])
        XCTAssertEqual(file.info("blk.0.attn_output.weight")?.shape, [48, 48], "block 0: zero linear-attention placeholder")
        XCTAssertNil(file.info("blk.4.attn_norm.weight"), "later attention-free blocks have no attention tensors")

        try Verifier.verify(back)
        XCTAssertEqual(back.blocks.count, 5)
        XCTAssertNil(LlamaBlock.attentionSizes(of: back.blocks[0]))
        XCTAssertEqual(LlamaBlock.attentionSizes(of: back.blocks[1])?.heads, 2)
        XCTAssertEqual(LlamaBlock.attentionSizes(of: back.blocks[1])?.kvHeads, 1)
        XCTAssertEqual(LlamaBlock.ffnWidth(of: back.blocks[2]), 40)
        XCTAssertNil(LlamaBlock.ffnWidth(of: back.blocks[3]))
        XCTAssertNil(LlamaBlock.attentionSizes(of: back.blocks[4]))
        XCTAssertEqual(try S.logits(back), try S.logits(model))
    }

    /// Frequency factors are written as `rope_freqs.weight` and linear scaling as `rope.scaling.*` (both read
    /// back bit-exact); Llama 3 scaling becomes the equivalent factors, which agree to Float rounding.
    func testRopeScalingIsWrittenAsLlamaCppReadsIt() throws {
        let factors: [Float] = [1, 1, 2, 4, 8, 8]
        let cases: [(RopeConfig.Scaling, exact: Bool)] = [
            (.frequencyFactors(factors), true), (.linear(factor: 4), true),
            (.llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 64), false),
        ]
        for (scaling, exact) in cases {
            var model = TinyLlama.make(seed: 12)
            model.config.rope.scaling = scaling
            for i in model.blocks.indices {
                let b = model.blocks[i]
                model.blocks[i] = S.rebuild(b, model: model, attention: LlamaBlock.attentionSizes(of: b), hasMLP: true, parameters: b.parameters)
            }
            let (back, file) = try roundTrip(model)
            switch scaling {
            case .frequencyFactors: XCTAssertEqual(try file.tensor("rope_freqs.weight").scalars, factors)
            case .linear:
                XCTAssertEqual(file.string("llama.rope.scaling.type"), "linear")
                XCTAssertEqual(back.config.rope.scaling, .linear(factor: 4))
            default: XCTAssertNotNil(file.info("rope_freqs.weight"))
            }
            let positions = (0..<40).map { Int32($0 % 64) }
            if exact {
                XCTAssertEqual(try S.logits(back, positions), try S.logits(model, positions), "\(scaling)")
            } else {
                let (diff, scale) = S.difference(try S.logits(model, positions), try S.logits(back, positions))
                XCTAssertLessThanOrEqual(diff, 1e-4 * scale, "\(scaling): max |Δlogit| \(diff) at scale \(scale)")
            }
        }
    }

    func testLowRankAndMaskedLinearsAreWrittenDense() throws {
        var model = TinyLlama.make(seed: 9)
        var g = SeededGenerator(seed: 1)
        // Block 0's MLP up projection becomes a rank-8 product; block 1's q weight gets a 50% mask.
        var b = model.blocks[0]
        b.parameters["mlp.up.weight"] = nil
        b.parameters["mlp.up.a"] = Tensor.randomNormal(shape: [8, 48], std: 0.1, generator: &g)
        b.parameters["mlp.up.b"] = Tensor.randomNormal(shape: [96, 8], std: 0.1, generator: &g)
        let up = b.nodeIndex("mlp.up")!
        b.nodes[up].op = LinearOp(lowRankPrefix: "mlp.up")
        model.blocks[0] = b
        let q = model.blocks[1].parameters["attn.q.weight"]!
        let mask = Mask(shape: q.shape, keep: (0..<q.count).map { UInt8($0 % 2) })
        model.blocks[1].setMasked("attn.q.weight", weight: q, mask: mask)
        try Verifier.verify(model)

        let (back, _) = try roundTrip(model)
        XCTAssertNotNil(back.blocks[0].parameters["mlp.up.weight"])
        let (diff, scale) = S.difference(try S.logits(model), try S.logits(back))
        XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "the multiplied-out product rounds differently from two products")
        let written = back.blocks[1].parameters["attn.q.weight"]!.scalars
        XCTAssertTrue(stride(from: 0, to: written.count, by: 2).allSatisfy { written[$0] == 0 }, "pruned entries are zeros")
    }

    func testProvenanceAndExtraMetadataRoundTrip() throws {
        var model = TinyLlama.make(seed: 10)
        model.provenance = [#"{"pass":"wanda","sparsity":0.5}"#, #"{"pass":"collapse","blocks":[3]}"#]
        let extra: [(String, GGUFValue)] = [("lancet.recipe", .string("stages: []\n")), ("lancet.input_sha256", .string("ab12")),
                                            ("lancet.seed", .uint64(7))]
        let (back, file) = try roundTrip(model, extra: extra)
        XCTAssertEqual(back.provenance, model.provenance)
        XCTAssertEqual(file.string("lancet.recipe"), "stages: []\n")
        XCTAssertEqual(file.string("lancet.input_sha256"), "ab12")
        XCTAssertEqual(file.metadata["lancet.seed"], .uint64(7))
    }

    func testExtraMetadataCannotReplaceTheExportersKeys() throws {
        let path = S.temporaryPath("clash.gguf")
        XCTAssertThrowsError(try GGUFExporter.write(TinyLlama.make(), to: path, extraMetadata: [("llama.block_count", .uint32(9))])) { e in
            XCTAssertTrue("\(e)".contains("'llama.block_count'"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testRefusesToOverwriteAnExistingFileUnlessAsked() throws {
        let path = S.temporaryPath("existing.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = TinyLlama.make(seed: 1), second = TinyLlama.make(seed: 2)
        try GGUFExporter.write(first, to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try GGUFExporter.write(second, to: path)) { e in
            XCTAssertTrue(e is FileWriteError, "\(e)")
            XCTAssertTrue("\(e)".contains("already exists"), "\(e)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        try GGUFExporter.write(second, to: path, overwrite: true)
        XCTAssertEqual(try S.logits(try ModelLoader.load(path)), try S.logits(second))
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(URL(fileURLWithPath: path).lastPathComponent + ".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    func testModelSaveChoosesTheFormatByPath() throws {
        let model = TinyLlama.make(seed: 11)
        let gguf = S.temporaryPath("saved.GGUF"), folder = S.temporaryPath("saved-hf")
        defer { for p in [gguf, folder] { try? FileManager.default.removeItem(atPath: p) } }
        try model.save(to: gguf, extraMetadata: ["lancet.seed": "3"])
        XCTAssertEqual(try GGUFFile(path: gguf).string("lancet.seed"), "3")
        try model.save(to: folder)
        XCTAssertEqual(try ModelLoader.format(of: folder), .huggingFace)
    }
}
