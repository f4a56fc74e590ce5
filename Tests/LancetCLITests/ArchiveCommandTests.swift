import Foundation
import XCTest

/// `.lancet` and `.safetensors` archives from the command line: `convert` writes one (with the tokenizer), `eval` and
/// `inspect` run it, and the factor options are refused where they mean nothing.
final class ArchiveCommandTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-archive-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try CommandLineTool.writeFixtures(into: folder)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func lancet(_ arguments: String...) throws -> CommandLineTool.Result { try CommandLineTool.run(arguments, in: folder) }

    func testAnArchiveConvertsAndRunsLikeAGGUF() throws {
        let convert = try lancet("convert", "model.gguf", "model.lancet")
        XCTAssertEqual(convert.status, 0, convert.stderr)
        let fromArchive = try lancet("eval", "model.lancet", "--data", "eval.txt", "--context", "32", "--max-windows", "2", "--json")
        let fromGGUF = try lancet("eval", "model.gguf", "--data", "eval.txt", "--context", "32", "--max-windows", "2", "--json")
        XCTAssertEqual(fromArchive.status, 0, fromArchive.stderr)
        func perplexity(_ r: CommandLineTool.Result) throws -> Double {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["perplexity"] as? Double)
        }
        XCTAssertEqual(try perplexity(fromArchive), try perplexity(fromGGUF), "the archive holds the same model and tokenizer")
        let safetensors = try lancet("convert", "model.lancet", "model.safetensors")
        XCTAssertEqual(safetensors.status, 0, safetensors.stderr)
        let fromSafetensors = try lancet("eval", "model.safetensors", "--data", "eval.txt", "--context", "32", "--max-windows", "2", "--json")
        XCTAssertEqual(fromSafetensors.status, 0, fromSafetensors.stderr)
        XCTAssertEqual(try perplexity(fromSafetensors), try perplexity(fromGGUF), "the safetensors archive holds the same model and tokenizer")
        let inspect = try lancet("inspect", "model.safetensors")
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("Lancet archive (safetensors)"), inspect.stdout)
        let back = try lancet("convert", "model.lancet", "hf", "--keep-factors")
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/hf/config.json"))
    }

    func testFactorAndTypeOptionsAreRefusedWhereTheyMeanNothing() throws {
        let gguf = try lancet("convert", "model.gguf", "out.gguf", "--keep-factors")
        XCTAssertEqual(gguf.status, 64)
        XCTAssertTrue(gguf.stderr.contains("--keep-factors applies to a Hugging Face folder"), gguf.stderr)
        let quantised = try lancet("convert", "model.gguf", "out.lancet", "--output-type", "Q8_0")
        XCTAssertEqual(quantised.status, 64)
        XCTAssertTrue(quantised.stderr.contains("--output-type must be F32 for a Lancet archive"), quantised.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.gguf"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.lancet"))
    }
}
