import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// `lancet inspect`'s summary of tiny models written by Lancet: file type and bits per weight, the share of zero
/// weights (dense, pruned, quantised), tied embeddings, tokenizer facts, per-block widths, and the tensor table in
/// natural block order with aligned columns.
final class ModelFileSummaryTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-summary-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A tiny model with `blocks` blocks (rows a multiple of 32, so Q8_0 applies to every matrix).
    static func tinyModel(blocks: Int = 2) -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.hidden = 64
        sizes.ffn = 128
        sizes.blocks = blocks
        return TinyLlama.make(sizes, seed: 11)
    }

    /// `model` with every second element of `mlp.up.weight` in block `block` set to zero; the zeros added.
    static func pruned(_ model: Model, block: Int) -> (Model, Int) {
        var m = model
        let w = m.blocks[block].parameters["mlp.up.weight"]!
        var values = w.scalars
        var added = 0
        for i in stride(from: 0, to: values.count, by: 2) where values[i] != 0 {
            values[i] = 0
            added += 1
        }
        m.blocks[block].parameters["mlp.up.weight"] = Tensor(shape: w.shape, values)
        return (m, added)
    }

    func testADenseF32FileHasNoZerosThirtyTwoBitsPerWeightAndTiedEmbeddings() throws {
        try GGUFExporter.write(Self.tinyModel(), to: folder + "/m.gguf")
        let s = try ModelLoader.summary(folder + "/m.gguf")
        XCTAssertEqual(s.fileType, "F32")
        XCTAssertEqual(s.bitsPerWeight, 32)
        XCTAssertEqual(s.blockMatrixZeros.zeros, 0)
        XCTAssertEqual(s.blockMatrixZeros.elements, 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 128),
                       "per block q, o: 64×64; k, v: 32×64 (2 KV heads of 16); gate, up, down: 64×128")
        XCTAssertEqual(s.tiedEmbeddings, true)
        XCTAssertEqual(s.fileBytes, try FileManager.default.attributesOfItem(atPath: folder + "/m.gguf")[.size] as? Int)
        XCTAssertNotNil(s.ropeTheta)
        XCTAssertNotNil(s.rmsEpsilon)
    }

    func testThePrunedShareOfZerosIsCountedInGGUFAndHuggingFaceFiles() throws {
        let (model, added) = Self.pruned(Self.tinyModel(), block: 1)
        try GGUFExporter.write(model, to: folder + "/m.gguf")
        try HuggingFaceExporter.write(model, to: folder + "/hf")
        for path in [folder + "/m.gguf", folder + "/hf"] {
            let s = try ModelLoader.summary(path)
            XCTAssertEqual(s.blockMatrixZeros.zeros, added, path)
            XCTAssertEqual(s.allZeros.zeros, added, path)
            let up = s.tensors.first { $0.name == (path.hasSuffix("hf") ? "model.layers.1.mlp.up_proj.weight" : "blk.1.ffn_up.weight") }
            XCTAssertEqual(up?.zeros, added, path)
            XCTAssertTrue(s.render().contains("zero weights:  "), path)
            XCTAssertTrue(s.render().contains(String(format: "%.2f%%", 100 * Double(added) / Double(s.blockMatrixZeros.elements))), s.render())
        }
    }

    func testQuantisedZerosAreCountedAfterDequantisation() throws {
        let (model, added) = Self.pruned(Self.tinyModel(), block: 0)
        try GGUFExporter.write(model, to: folder + "/q8.gguf", type: .q8_0)
        let s = try ModelLoader.summary(folder + "/q8.gguf")
        XCTAssertEqual(s.fileType, "Q8_0")
        XCTAssertEqual(s.bitsPerWeight, 8.5, accuracy: 0.1, "34 bytes per 32 weights, the F32 norms a small addition")
        // A zero stays zero in Q8_0 (scale × 0); a small weight may round to zero too.
        let up = try XCTUnwrap(s.tensors.first { $0.name == "blk.0.ffn_up.weight" })
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(up.zeros), added)
        XCTAssertLessThan(try XCTUnwrap(up.zeros), added + up.elementCount / 20)
    }

    func testTheTensorTableIsInNaturalBlockOrderWithAlignedColumns() throws {
        try GGUFExporter.write(Self.tinyModel(blocks: 12), to: folder + "/m.gguf")
        let s = try ModelLoader.summary(folder + "/m.gguf")
        let header = s.render()
        XCTAssertFalse(header.contains("blk."), "no tensor table by default")
        XCTAssertLessThanOrEqual(header.split(separator: "\n").count, 40)
        let table = s.tensorTableLines
        XCTAssertEqual(table.count, s.tensors.count + 1)
        let names = table.dropFirst().map { String($0.split(separator: " ")[0]) }
        XCTAssertEqual(names.first, "token_embd.weight")
        XCTAssertEqual(names.last, "output_norm.weight")
        let blockOrder = names.compactMap(TensorNameOrder.blockIndex)
        XCTAssertEqual(blockOrder, blockOrder.sorted(), "blk.2 before blk.10")
        XCTAssertLessThan(names.firstIndex(of: "blk.2.attn_q.weight")!, names.firstIndex(of: "blk.10.attn_q.weight")!)
        // Every column starts at the same offset on every row: the header's column starts are spaces-then-text
        // boundaries in every row too (right-aligned numbers end where their header ends).
        let typeColumn = table[0].range(of: "TYPE")!.lowerBound.utf16Offset(in: table[0])
        let bytesEnd = table[0].range(of: "BYTES")!.upperBound.utf16Offset(in: table[0])
        for row in table.dropFirst() {
            let chars = Array(row)
            XCTAssertEqual(chars[typeColumn - 1], " ", row)
            XCTAssertNotEqual(chars[typeColumn], " ", row)
            XCTAssertNotEqual(chars[bytesEnd - 1], " ", row)
            XCTAssertEqual(chars[bytesEnd], " ", row)
        }
    }

    func testNaturalOrderComparesDigitRunsAsNumbers() {
        let names = ["output.weight", "blk.10.attn_q.weight", "blk.1.ffn_up.weight", "token_embd.weight", "blk.2.attn_q.weight",
                     "output_norm.weight", "blk.1.attn_q.weight"]
        XCTAssertEqual(TensorNameOrder.sorted(names), ["token_embd.weight", "blk.1.attn_q.weight", "blk.1.ffn_up.weight", "blk.2.attn_q.weight",
                                                       "blk.10.attn_q.weight", "output.weight", "output_norm.weight"])
        XCTAssertEqual(TensorNameOrder.blockIndex("model.layers.12.mlp.up_proj.weight"), 12)
        XCTAssertNil(TensorNameOrder.blockIndex("model.embed_tokens.weight"))
    }

    func testPerBlockWidthsAreShownAsRunsWhenBlocksDiffer() {
        XCTAssertEqual(ModelFileSummary.perBlock([1536]), "1536")
        XCTAssertEqual(ModelFileSummary.perBlock([1536, 1472, 1472, 1216, 1536]), "per block 1536 (0), 1472 (1–2), 1216 (3), 1536 (4)")
    }

    func testFileTypeNamesFollowLlamaCpp() {
        XCTAssertEqual(ModelFileSummary.fileTypeName(code: 0), "F32")
        XCTAssertEqual(ModelFileSummary.fileTypeName(code: 3), "Q4_1")
        XCTAssertEqual(ModelFileSummary.fileTypeName(code: 15), "Q4_K_M")
        XCTAssertEqual(ModelFileSummary.fileTypeName(code: 32), "BF16")
        XCTAssertEqual(ModelFileSummary.fileTypeName(code: 999), "code 999")
    }
}
