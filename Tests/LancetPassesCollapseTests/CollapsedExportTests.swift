import Foundation
import Lancet
import XCTest

/// Collapsed models leave Lancet with fewer blocks: GGUF (`llama`, or `deci` with an attention-free replacement) and
/// Hugging Face folders whose `num_hidden_layers` counts the blocks left, loading back to the same logits.
final class CollapsedExportTests: XCTestCase {
    typealias Fixture = RemoveLayersTests

    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "lancet-collapsed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func logits(_ model: Model) throws -> Tensor {
        try ModelRunner(model: model).logits(Array(Fixture.calibration(model).windows[0]), context: ExecutionContext(batch: 1, length: 16))
    }

    func testARemovalExportsAsGGUFAndHuggingFaceWithTheBlocksLeft() throws {
        let dense = Fixture.model()
        let (collapsed, _) = try Fixture.run([("blocks", "[1, 4]")], fit: FitSpec(method: .lstsq), on: dense)
        let dir = try folder()
        try collapsed.save(to: dir + "/m.gguf")
        try collapsed.save(to: dir + "/hf")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["num_hidden_layers"] as? Int, 4)
        for path in [dir + "/m.gguf", dir + "/hf"] {
            let back = try ModelLoader.load(path)
            XCTAssertEqual(back.blocks.count, 4, path)
            // GGUF keeps every bit; the Hugging Face layout permutes q and k rows, which reorders sums a little.
            let (a, b) = (try logits(back).scalars, try logits(collapsed).scalars)
            XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-4 * b.map(abs).max()!, path)
        }
    }

    func testAReplacedSpanExportsAsDeciGGUFAndTheHuggingFaceExportSaysWhyNot() throws {
        let dense = Fixture.model()
        let (replaced, _) = try Fixture.run([("count", "3"), ("start", "2")], pass: "replace-span", fit: FitSpec(method: .lstsq), on: dense)
        let dir = try folder()
        try replaced.save(to: dir + "/m.gguf")
        XCTAssertEqual(try GGUFFile(path: dir + "/m.gguf").metadata["general.architecture"], .string("deci"))
        let back = try ModelLoader.load(dir + "/m.gguf")
        XCTAssertEqual(back.blocks.count, 4)
        XCTAssertNil(LlamaBlock.attentionSizes(of: back.blocks[2]))
        XCTAssertEqual(try logits(back), try logits(replaced))
        XCTAssertThrowsError(try replaced.save(to: dir + "/hf")) { error in
            XCTAssertTrue("\(error)".contains("block 2"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/hf/model.safetensors"), "nothing half-written")
    }
}
