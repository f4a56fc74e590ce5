import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Quantised GGUF exports against llama.cpp: the block encoders reproduce `llama-quantize`'s bytes on real
/// pruned rows and hand-made edge cases (committed fixtures), the per-tensor type choices reproduce its
/// choices for every file type on SmolLM2, and every type reads back and re-exports bit for bit.
final class QuantizedExportTests: XCTestCase {
    typealias S = ExportTestSupport

    /// The block types Lancet writes and the fixture holds llama.cpp's encoding of.
    static let blockTypes: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    private func fixture(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/quantized-rows") else {
            throw XCTSkip("fixture Fixtures/quantized-rows/\(name) is missing")
        }
        return try Data(contentsOf: url)
    }

    func testEncodersReproduceLlamaQuantizeBytesOnRealAndEdgeCaseRows() throws {
        let raw = try fixture("values.f32")
        let values = raw.withUnsafeBytes { p in (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
        XCTAssertEqual(values.count, 4 * 1536)
        XCTAssertGreaterThan(values.filter { $0 == 0 }.count, 1536, "the pruned rows and edge cases hold many exact zeros")
        for type in Self.blockTypes {
            let want = [UInt8](try fixture("\(type.name).bin"))
            var got = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
            try values.withUnsafeBufferPointer { src in try got.withUnsafeMutableBytes { try GGMLQuantizer.encode(type, from: src, into: $0) } }
            XCTAssertEqual(got.count, want.count, type.name)
            let firstDifference = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            XCTAssertNil(firstDifference, "\(type.name): first differing byte \(firstDifference ?? -1) (block \((firstDifference ?? 0) / type.blockBytes))")
            // What the reader decodes is what llama.cpp's bytes decode to, and within the format's step of the input.
            var decoded = [Float](repeating: 0, count: values.count)
            try want.withUnsafeBytes { b in try decoded.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(type, from: b, into: $0) } }
            let worst = zip(decoded, values).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 0.5 * values.map(abs).max()!, "\(type.name): decoded values are far from the input")
        }
    }

    func testEncodersSplitWorkWithoutChangingBytes() throws {
        // 80 super-blocks: above the parallel threshold, so the tasks split the input; every split gives the same bytes.
        var rng = SplitMix64(seed: 17)
        let values = (0..<(80 * 256)).map { i in i % 7 == 0 ? 0 : Float.random(in: -1...1, using: &rng) * (i % 256 < 32 ? 0.01 : 1) }
        XCTAssertGreaterThanOrEqual(values.count, GGMLQuantizer.parallelThreshold)
        for type in Self.blockTypes {
            var whole = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
            try values.withUnsafeBufferPointer { src in try whole.withUnsafeMutableBytes { try GGMLQuantizer.encode(type, from: src, into: $0) } }
            var pieces: [UInt8] = []
            for start in stride(from: 0, to: values.count, by: 256) {
                var part = [UInt8](repeating: 0, count: type.byteCount(elements: 256))
                try values[start..<(start + 256)].withUnsafeBufferPointer { src in
                    try part.withUnsafeMutableBytes { try GGMLQuantizer.encode(type, from: src, into: $0) }
                }
                pieces += part
            }
            XCTAssertEqual(whole, pieces, type.name)
        }
    }

    func testNonFiniteValuesAreRefusedNamingTheElementAndType() {
        for type in Self.blockTypes {
            var values = [Float](repeating: 0.5, count: 256)
            values[200] = .nan
            var out = [UInt8](repeating: 0, count: type.byteCount(elements: 256))
            XCTAssertThrowsError(try values.withUnsafeBufferPointer { src in try out.withUnsafeMutableBytes { try GGMLQuantizer.encode(type, from: src, into: $0) } }) { e in
                XCTAssertEqual((e as? GGMLQuantizer.NonFinite)?.index, 200, type.name)
                XCTAssertTrue("\(e)".contains(type.name), "\(e)")
            }
        }
    }

    func testTypeChoicesMatchLlamaQuantizeForEveryFileTypeOnSmolLM2() throws {
        _ = try GGUFTestSupport.openModel()  // skips when the model is absent
        guard let url = Bundle.module.url(forResource: "llama-quantize-types", withExtension: "json", subdirectory: "Fixtures") else {
            return XCTFail("fixture llama-quantize-types.json is missing")
        }
        struct Fixture: Decodable { let names: [String]; let types: [String: String] }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let model = try ModelLoader.load(GGUFTestSupport.modelPath)
        let plan = try GGUFExportPlan(model, path: "smollm2.gguf")
        XCTAssertEqual(fixture.types.count, GGUFFileType.allCases.count - 1, "every file type but F32")
        for (name, line) in fixture.types.sorted(by: { $0.key < $1.key }) {
            let want = Dictionary(uniqueKeysWithValues: zip(fixture.names, line.split(separator: " ").map(String.init)))
            let got = Dictionary(uniqueKeysWithValues: try plan.storedTypes(GGUFFileType(parsing: name)).map { ($0.name, $0.type.name) })
            XCTAssertEqual(got.count, 272, name)
            for key in fixture.names where got[key] != want[key] {
                XCTFail("\(name): \(key) is \(got[key] ?? "missing"), llama-quantize makes it \(want[key]!)")
            }
        }
    }

    /// A model whose rows fit the K-quant blocks (hidden 256, FFN 512), with pruned (zero) weights.
    private func prunedModel(tied: Bool) -> Model {
        var sizes = TinyLlama.Sizes()
        (sizes.hidden, sizes.ffn, sizes.heads, sizes.kvHeads, sizes.blocks, sizes.tied) = (256, 512, 4, 2, 3, tied)
        var model = TinyLlama.make(sizes, seed: 21)
        for b in model.blocks.indices {
            for name in model.blocks[b].parameters.keys.sorted() where model.blocks[b].parameters[name]!.rank == 2 {
                let t = model.blocks[b].parameters[name]!
                model.blocks[b].parameters[name] = Tensor(shape: t.shape, (0..<t.count).map { i in i % 2 == 0 ? 0 : t[flat: i] })
            }
        }
        return model
    }

    func testEveryFileTypeReadsBackAndReexportsBitForBit() throws {
        for tied in [true, false] {
            let model = prunedModel(tied: tied)
            let reference = try S.logits(model)
            for type in GGUFFileType.allCases {
                let first = S.temporaryPath("first.gguf"), second = S.temporaryPath("second.gguf")
                defer { for p in [first, second] { try? FileManager.default.removeItem(atPath: p) } }
                try GGUFExporter.write(model, to: first, type: type)
                let file = try GGUFFile(path: first)
                XCTAssertEqual(file.int("general.file_type"), Int(type.code), type.name)
                let back = try ModelLoader.load(first)
                let (diff, scale) = S.difference(reference, try S.logits(back))
                XCTAssertLessThanOrEqual(diff, 0.25 * scale, "\(type.name), tied \(tied): logits moved \(diff) at scale \(scale)")
                // Re-exported from the file it was loaded from: every tensor keeps its bytes.
                try back.save(to: second, ggufType: type, source: first)
                let again = try GGUFFile(path: second)
                XCTAssertEqual(again.tensors.map(\.name), file.tensors.map(\.name))
                for (a, b) in zip(file.tensors, again.tensors) {
                    XCTAssertEqual(a.type, b.type, "\(type.name): \(a.name)")
                    XCTAssertTrue(file.rawBytes(of: a).elementsEqual(again.rawBytes(of: b)), "\(type.name), tied \(tied): \(a.name) changed on re-export")
                }
                if type.isQuantized {
                    let head = tied ? "token_embd.weight" : "output.weight"
                    XCTAssertEqual(file.info(head)?.type, type == .q8_0 ? .q8_0 : .q6_K, "\(type.name): the head gets more bits")
                }
            }
        }
    }

    func testSymmetricFormatsKeepEveryPrunedZero() throws {
        let model = prunedModel(tied: false)
        let original = model.blocks[1].parameters["mlp.down.weight"]!
        let zeros = (0..<original.count).filter { original[flat: $0] == 0 }
        XCTAssertEqual(zeros.count, original.count / 2)
        let path = S.temporaryPath("zeros.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        for type in [GGUFFileType.q8_0, .q4_0, .q5_0, .q6_K] {
            try GGUFExporter.write(model, to: path, type: type, overwrite: true)
            let stored = try ModelLoader.load(path).blocks[1].parameters["mlp.down.weight"]!
            XCTAssertTrue(zeros.allSatisfy { stored[flat: $0] == 0 }, "\(type.name): a pruned weight decoded to non-zero")
        }
    }

    func testExportReportsHowManyPrunedZerosEachTypeKeeps() throws {
        let model = prunedModel(tied: true)
        let zeros = model.blocks.flatMap { $0.parameters.values.filter { $0.rank == 2 } }.reduce(0) { total, t in
            total + (0..<t.count).filter { t[flat: $0] == 0 }.count
        }
        let path = S.temporaryPath("retention.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertNil(try GGUFExporter.write(model, to: path, type: .f16, overwrite: true), "16-bit files keep every zero")
        for type in [GGUFFileType.q8_0, .q4_0, .q5_0, .q6_K] {
            let kept = try XCTUnwrap(try GGUFExporter.write(model, to: path, type: type, overwrite: true))
            XCTAssertEqual(kept, GGUFExporter.ZeroRetention(zeroWeights: zeros, keptZero: zeros), type.name)
        }
        for type in [GGUFFileType.q4_1, .q5_1, .q4_K_S] {
            let kept = try XCTUnwrap(try GGUFExporter.write(model, to: path, type: type, overwrite: true))
            XCTAssertEqual(kept.zeroWeights, zeros)
            XCTAssertLessThan(kept.keptZero, zeros, "\(type.name): a per-block minimum moves most zeros")
            // The count is what the file decodes to: re-read and count the surviving zeros directly.
            let back = try ModelLoader.load(path)
            let survived = zip(model.blocks, back.blocks).flatMap { a, b in
                a.parameters.filter { $0.value.rank == 2 }.map { name, t in (0..<t.count).filter { t[flat: $0] == 0 && b.parameters[name]![flat: $0] == 0 }.count }
            }.reduce(0, +)
            XCTAssertEqual(kept.keptZero, survived, type.name)
        }
    }

    func testDeciPlaceholdersAndFallbacksFollowLlamaQuantizesRules() throws {
        var sizes = TinyLlama.Sizes()
        (sizes.hidden, sizes.ffn, sizes.blocks) = (256, 512, 5)
        var model = TinyLlama.make(sizes, seed: 9)
        S.removeAttention(&model, block: 0)
        S.shrinkFFN(&model, block: 2, to: 96)  // rows of 96: no K-quant block fits ffn_down
        S.removeMLP(&model, block: 3)
        let path = S.temporaryPath("deci-q4km.gguf")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFExporter.write(model, to: path, type: .q4_K_M)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.string("general.architecture"), "deci")
        func type(_ name: String) -> GGMLType? { file.info(name)?.type }
        XCTAssertEqual(type("blk.0.attn_output.weight"), .q4_K, "the linear-attention placeholder is a matrix like any other")
        XCTAssertEqual(type("blk.3.ffn_gate.weight"), .q4_K)
        XCTAssertEqual(type("blk.3.ffn_down.weight"), .f16, "rows of 1 fit no block: Q4_K, then Q5_0, then F16")
        // ffn_down counts layers 0…4 of 5: more bits (Q6_K) for layers 2 (every third after the first eighth) and 4 (last eighth).
        XCTAssertEqual(type("blk.0.ffn_down.weight"), .q4_K)
        XCTAssertEqual(type("blk.1.ffn_down.weight"), .q4_K)
        XCTAssertEqual(type("blk.2.ffn_down.weight"), .q8_0, "Q6_K falls back to Q8_0 for rows of 96")
        XCTAssertEqual(type("blk.4.ffn_down.weight"), .q6_K)
        // attn_v counts only the 4 blocks with attention: blocks 1, 2, 3, 4 are its layers 0…3; 2 and 3 get more bits.
        XCTAssertEqual(type("blk.1.attn_v.weight"), .q4_K)
        XCTAssertEqual(type("blk.2.attn_v.weight"), .q4_K)
        XCTAssertEqual(type("blk.3.attn_v.weight"), .q6_K)
        XCTAssertEqual(type("blk.4.attn_v.weight"), .q6_K)
        XCTAssertEqual(type("blk.1.attn_norm.weight"), .f32)
        for info in file.tensors where info.type != .f32 && info.type != .f16 {
            XCTAssertEqual(info.dimensions[0] % info.type.blockSize, 0, info.name)
        }
        let back = try ModelLoader.load(path)
        XCTAssertEqual(back.blocks.count, 5)
        XCTAssertNil(LlamaBlock.ffnWidth(of: back.blocks[3]))
        let (diff, scale) = S.difference(try S.logits(model), try S.logits(back))
        XCTAssertLessThanOrEqual(diff, 0.25 * scale)
    }

    func testFileTypeNamesFollowLlamaQuantize() throws {
        XCTAssertEqual(GGUFFileType(name: "q4_k_m"), .q4_K_M)
        XCTAssertEqual(GGUFFileType(name: "Q4_K"), .q4_K_M)
        XCTAssertEqual(GGUFFileType(name: "Q5_K"), .q5_K_M)
        XCTAssertEqual(GGUFFileType(uniform: .q8_0), .q8_0)
        XCTAssertNil(GGUFFileType(uniform: .q4_K))
        XCTAssertEqual(GGUFFileType.q4_K_M.code, 15)
        XCTAssertThrowsError(try GGUFFileType(parsing: "Q3_K")) { e in
            XCTAssertTrue("\(e)".contains("'Q3_K' is not a GGUF output type"), "\(e)")
            XCTAssertTrue("\(e)".contains("Q4_K_M"), "\(e)")
        }
    }
}
