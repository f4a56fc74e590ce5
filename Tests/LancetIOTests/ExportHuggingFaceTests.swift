import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Hugging Face export: tiny models written as a folder and read back with `ModelLoader` compute the same
/// logits; models transformers cannot express are refused with a reason and a pointer to GGUF.
final class ExportHuggingFaceTests: XCTestCase {
    typealias S = ExportTestSupport

    private func roundTrip(_ model: Model, maxShardBytes: Int = HuggingFaceExporter.defaultMaxShardBytes) throws -> (Model, String) {
        let folder = S.temporaryPath("export-hf")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try HuggingFaceExporter.write(model, to: folder, maxShardBytes: maxShardBytes)
        return (try ModelLoader.load(folder), folder)
    }

    /// A halves-paired model is written as it is (bit-exact); an adjacent-paired one is permuted to halves,
    /// which changes the order attention sums head dimensions in (agreement to rounding).
    func testTinyLlamaRoundTripsThroughAFolderForBothPairingsTiedAndUntied() throws {
        for pairing in [RopePairing.halves, .adjacent] {
            for tied in [true, false] {
                var sizes = TinyLlama.Sizes()
                sizes.tied = tied
                let model = TinyLlama.make(sizes, seed: 20, pairing: pairing)
                let (back, folder) = try roundTrip(model)
                XCTAssertEqual(back.isTied, tied)
                XCTAssertEqual(back.config.rope.pairing, .halves)
                let config = try LlamaFamilyConfig.load(path: folder + "/config.json")
                XCTAssertEqual(config.tieWordEmbeddings, tied)
                XCTAssertEqual(config.modelType, .llama)
                if pairing == .halves {
                    XCTAssertEqual(try S.logits(back), try S.logits(model), "halves, tied \(tied): bit-exact")
                } else {
                    let (diff, scale) = S.difference(try S.logits(model), try S.logits(back))
                    XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "adjacent, tied \(tied): max |Δlogit| \(diff) at scale \(scale)")
                }
            }
        }
    }

    func testGGUFAndHuggingFaceExportsOfTheSameModelAgree() throws {
        let model = TinyLlama.make(seed: 21, pairing: .adjacent)
        let (viaHF, folder) = try roundTrip(model)
        // Back to GGUF from the Hugging Face import: permuted to adjacent again, identical to the original rows.
        let path = folder + ".gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(viaHF, to: path)
        let again = try ModelLoader.load(path)
        for i in 0..<2 {
            for name in ["attn.q.weight", "attn.k.weight", "attn.v.weight", "mlp.down.weight"] {
                XCTAssertEqual(again.blocks[i].parameters[name], model.blocks[i].parameters[name], "block \(i) \(name)")
            }
        }
        XCTAssertEqual(try S.logits(again), try S.logits(model))
    }

    func testShardsWhenLargerThanTheLimit() throws {
        let model = TinyLlama.make(seed: 22)
        let (back, folder) = try roundTrip(model, maxShardBytes: 20_000)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/model.safetensors.index.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/model.safetensors"))
        XCTAssertEqual(back.provenance, [])
        let (diff, scale) = S.difference(try S.logits(model), try S.logits(back))
        XCTAssertLessThanOrEqual(diff, 1e-5 * scale)
    }

    func testProvenanceAndExtraMetadataGoToSafetensorsMetadata() throws {
        var model = TinyLlama.make(seed: 23)
        model.provenance = [#"{"pass":"wanda","note":"quote \" and / slash"}"#]
        let folder = S.temporaryPath("prov-hf")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HuggingFaceExporter.write(model, to: folder, extraMetadata: ["lancet.seed": "7"])
        let file = try SafetensorsFile(path: folder + "/model.safetensors")
        XCTAssertEqual(file.metadata["lancet.seed"], "7")
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(try ModelLoader.load(folder).provenance, model.provenance)
    }

    func testHeterogeneousBlocksAreRefusedWithAReasonAndGGUFSuggested() throws {
        let cases: [(String, Int, (inout Model) -> Void)] = [
            ("heads", 1, { S.keepHeads(&$0, block: 1, kvHeads: 1) }),
            ("FFN width", 0, { S.shrinkFFN(&$0, block: 0, to: 40) }),
            ("no attention", 1, { S.removeAttention(&$0, block: 1) }),
            ("no MLP", 0, { S.removeMLP(&$0, block: 0) }),
        ]
        for (what, block, surgery) in cases {
            var model = TinyLlama.make(seed: 24)
            surgery(&model)
            let folder = S.temporaryPath("hetero-hf")
            XCTAssertThrowsError(try HuggingFaceExporter.write(model, to: folder), what) { e in
                XCTAssertEqual((e as? ModelExportError)?.block, block, "\(what): \(e)")
                XCTAssertTrue("\(e)".contains("GGUF"), "\(what): \(e)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder), "\(what): no folder left behind")
            // The up-front check `lancet validate` makes refuses the same model for the same reason, writing nothing.
            XCTAssertThrowsError(try HuggingFaceExporter.checkExpressible(model, folder: folder), what) { e in
                XCTAssertEqual((e as? ModelExportError)?.block, block, "\(what): \(e)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder), what)
        }
        XCTAssertNoThrow(try HuggingFaceExporter.checkExpressible(TinyLlama.make(seed: 24), folder: S.temporaryPath("uniform-hf")))
    }

    func testOverwritingAShardedCheckpointWithOneFileRemovesTheStaleShardsAndLeavesNoStagingFolder() throws {
        let parent = S.temporaryPath("staged")
        let folder = parent + "/hf"
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try HuggingFaceExporter.write(TinyLlama.make(seed: 3), to: folder, maxShardBytes: 20_000)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/model.safetensors.index.json"))
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: folder + "/README.md"))
        let second = TinyLlama.make(seed: 4)
        try HuggingFaceExporter.write(second, to: folder, overwrite: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertEqual(files, ["README.md", "config.json", "model.safetensors"], "the shards and index went, the user's file stayed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["hf"], "no staging folder left")
        let (diff, scale) = S.difference(try S.logits(second), try S.logits(try ModelLoader.load(folder)))
        XCTAssertLessThanOrEqual(diff, 1e-5 * scale)
    }

    func testRefusesToOverwriteAnExistingCheckpointUnlessAsked() throws {
        let folder = S.temporaryPath("existing-hf")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HuggingFaceExporter.write(TinyLlama.make(seed: 1), to: folder)
        let before = try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors"))
        XCTAssertThrowsError(try HuggingFaceExporter.write(TinyLlama.make(seed: 2), to: folder)) { e in
            XCTAssertTrue("\(e)".contains("already exists"), "\(e)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors")), before)
        let second = TinyLlama.make(seed: 2, pairing: .halves)
        try HuggingFaceExporter.write(second, to: folder, overwrite: true)
        XCTAssertEqual(try S.logits(try ModelLoader.load(folder)), try S.logits(second))
    }

    func testFrequencyFactorsHaveNoConfigEquivalent() {
        var model = TinyLlama.make(seed: 25)
        model.config.rope.scaling = .frequencyFactors(Array(repeating: 1, count: 6))
        for i in model.blocks.indices {
            let b = model.blocks[i]
            model.blocks[i] = S.rebuild(b, model: model, attention: LlamaBlock.attentionSizes(of: b), hasMLP: true, parameters: b.parameters)
        }
        XCTAssertThrowsError(try HuggingFaceExporter.write(model, to: S.temporaryPath("factors-hf"))) { e in
            XCTAssertTrue("\(e)".contains("rope_freqs"), "\(e)")
        }
    }
}
