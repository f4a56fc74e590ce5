import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Lancet's archive in a safetensors file: the same model as the `.lancet` GGUF container (parameters, masks, graph,
/// provenance), readable by any safetensors reader, and refused by name when it is not an archive or a mask is wrong.
final class SafetensorsArchiveTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-st-archive-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// The tiny model with every third weight of block 1's up projection masked (and zeroed), and a provenance line.
    static func maskedModel() -> Model {
        var model = ModelFileSummaryTests.tinyModel()
        let w = model.blocks[1].parameters["mlp.up.weight"]!
        let keep = (0..<w.count).map { UInt8($0 % 3 == 0 ? 0 : 1) }
        model.blocks[1].parameters["mlp.up.weight"] = Tensor(shape: w.shape, zip(w.scalars, keep).map { $1 == 0 ? 0 : $0 })
        model.blocks[1].masks["mlp.up.weight"] = Mask(shape: w.shape, keep: keep)
        model.provenance = ["prune: {sparsity: 0.33}"]
        return model
    }

    func testTheSafetensorsArchiveHoldsWhatTheGGUFArchiveHolds() throws {
        let model = Self.maskedModel()
        try model.save(to: folder + "/m.safetensors")
        try model.save(to: folder + "/m.lancet")
        let fromSafetensors = try ModelLoader.load(folder + "/m.safetensors")
        let fromGGUF = try ModelLoader.load(folder + "/m.lancet")
        for back in [fromSafetensors, fromGGUF] {
            XCTAssertEqual(back.blocks.count, model.blocks.count)
            for (a, b) in zip(back.blocks, model.blocks) {
                XCTAssertEqual(a.parameters.keys.sorted(), b.parameters.keys.sorted())
                for (name, t) in b.parameters { XCTAssertEqual(a.parameters[name]!.scalars, t.scalars, name) }
                XCTAssertEqual(a.masks, b.masks)
                XCTAssertEqual(a.nodes.map(\.name), b.nodes.map(\.name))
            }
            XCTAssertEqual(back.embedding.scalars, model.embedding.scalars)
            XCTAssertEqual(back.provenance, model.provenance)
        }
        // Any safetensors reader sees the archive's tensors, the mask as U8 and the graph as metadata.
        let file = try SafetensorsFile(path: folder + "/m.safetensors")
        XCTAssertEqual(file.metadata["format"], "lancet-archive")
        XCTAssertEqual(file.info("blocks.1.mlp.up.weight.mask")?.dtype, .u8)
        XCTAssertNotNil(file.metadata["lancet.archive.ir"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) })
        let summary = try ModelLoader.summary(folder + "/m.safetensors")
        XCTAssertEqual(summary.format, "lancet-safetensors")
        XCTAssertEqual(summary.blocks, 2)
        XCTAssertEqual(summary.ffnWidth, [128])
        XCTAssertEqual(summary.provenance, model.provenance)
    }

    func testAPlainSafetensorsFileIsNotTakenForAModel() throws {
        var writer = SafetensorsWriter()
        writer.add("model.norm.weight", Tensor(shape: [4], repeating: 1))
        try writer.write(to: folder + "/model.safetensors")
        XCTAssertThrowsError(try ModelLoader.load(folder + "/model.safetensors")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.safetensors") && text.contains("only as a Lancet archive") && text.contains("'pt'"), text)
        }
    }

    func testAMaskOfTheWrongTypeOrWithOtherValuesIsRefusedByName() throws {
        try Self.maskedModel().save(to: folder + "/m.safetensors")
        let file = try SafetensorsFile(path: folder + "/m.safetensors")
        func rewritten(_ name: String, mask: (Tensor) -> (Tensor, SafetensorsDType)) throws -> String {
            var writer = SafetensorsWriter(metadata: file.metadata)
            for info in file.tensors {
                if info.name.hasSuffix(".mask") {
                    let keep = Tensor(shape: info.shape, file.rawBytes(of: info).map(Float.init))
                    let (t, dtype) = mask(keep)
                    writer.add(info.name, t, as: dtype)
                } else {
                    writer.add(info.name, try file.tensor(info))
                }
            }
            try writer.write(to: folder + "/" + name)
            return folder + "/" + name
        }
        let asFloats = try rewritten("f32.safetensors") { ($0, .f32) }
        XCTAssertThrowsError(try ModelLoader.load(asFloats)) {
            XCTAssertTrue("\($0)".contains("'blocks.1.mlp.up.weight.mask' must be U8"), "\($0)")
        }
        let twos = try rewritten("twos.safetensors") { t in (Tensor(shape: t.shape, t.scalars.map { $0 * 2 }), .u8) }
        XCTAssertThrowsError(try ModelLoader.load(twos)) {
            XCTAssertTrue("\($0)".contains("'blocks.1.mlp.up.weight.mask' holds values other than 0 and 1"), "\($0)")
        }
    }

    func testGGUFMetadataRoundTripsThroughJSONExactly() throws {
        let pairs: [(String, GGUFValue)] = [
            ("u8", .uint8(255)), ("i8", .int8(-128)), ("u16", .uint16(65535)), ("i16", .int16(-32768)),
            ("u32", .uint32(.max)), ("i32", .int32(.min)), ("u64", .uint64(.max)), ("i64", .int64(.min)),
            ("f32", .float32(0.1)), ("f64", .float64(-1e-300)), ("flag", .bool(false)), ("text", .string("a \"quoted\"\n line")),
            ("scores", .array(.float32, [.float32(-1.5), .float32(.leastNonzeroMagnitude), .float32(3.4028235e38)])),
            ("tokens", .array(.string, [.string("Ġthe"), .string("")])), ("empty", .array(.int32, [])),
            ("nested", .array(.array, [.array(.uint8, [.uint8(1)])])),
        ]
        let back = try XCTUnwrap(GGUFValue.pairs(fromJSONText: try GGUFValue.jsonText(of: pairs)))
        XCTAssertEqual(back.map(\.0), pairs.map(\.0))
        XCTAssertEqual(back.map(\.1), pairs.map(\.1))
        XCTAssertNil(GGUFValue.pairs(fromJSONText: #"[["k", {"type": "uint8", "value": 256}]]"#), "out of range")
        XCTAssertNil(GGUFValue.pairs(fromJSONText: #"[["k", {"type": "float99", "value": "1"}]]"#), "unknown type")
    }
}
