import Foundation
import Lancet
import XCTest

/// `lancet eval` and `lancet inspect` run as a user runs them: eval names its protocol, model, data, context and
/// windows in text and JSON; inspect fits one screen, shows the zero share of a pruned model, and lists every
/// tensor in natural order with `--tensors` (on a tiny model, and on the reference SmolLM2 when present).
final class EvalInspectCommandTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-eval-inspect-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// Runs `lancet arguments…`; returns its exit status and standard output.
    func lancet(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let run = try LancetTool.run(arguments)
        return (run.status, run.stdout)
    }

    /// A tiny model with a byte-level tokenizer (the 256 byte tokens and BOS/EOS, no merges), written as GGUF;
    /// with `pruned`, every second weight of block 0's `mlp.up` is zero.
    func tinyModel(addsBOS: Bool = false, pruned: Bool = false) throws -> String {
        let tokens = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) } + ["<|im_start|>", "<|im_end|>"]
        let spec = TokenizerSpec(source: "test", kind: .byteLevelBPE, tokens: tokens,
                                 tokenTypes: Array(repeating: .normal, count: 256) + [.control, .control], merges: [],
                                 preTokenizer: "smollm", bos: 256, eos: 257, addBOS: addsBOS)
        var sizes = TinyLlama.Sizes()
        sizes.vocabulary = tokens.count
        var model = TinyLlama.make(sizes, seed: 3)
        model.tokenizer = try Tokenizer(spec: spec)
        if pruned {
            let w = model.blocks[0].parameters["mlp.up.weight"]!
            model.blocks[0].parameters["mlp.up.weight"] = Tensor(shape: w.shape, w.scalars.enumerated().map { $0.offset % 2 == 0 ? 0 : $0.element })
        }
        let path = folder + "/tiny-\(addsBOS)-\(pruned).gguf"
        try model.save(to: path)
        return path
    }

    func textFile() throws -> String {
        let path = folder + "/text.txt"
        try Data(String(repeating: "The cat sat on the mat, and then the rain came in. ", count: 8).utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testEvalNamesProtocolModelDataContextAndWindowsInTextAndJSON() throws {
        let (model, data) = (try tinyModel(addsBOS: true), try textFile())
        for p in ["papers", "llama.cpp"] {
            let (status, json) = try lancet(["eval", model, "--data", data, "--context", "64", "--max-windows", "3", "--protocol", p, "--json"])
            XCTAssertEqual(status, 0, json)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            XCTAssertEqual(object["protocol"] as? String, p)
            XCTAssertEqual(object["model"] as? String, model)
            XCTAssertEqual(object["data"] as? String, data)
            XCTAssertEqual(object["context"] as? Int, 64)
            XCTAssertEqual(object["windows"] as? Int, 3)
            XCTAssertEqual(object["score_from"] as? Int, p == "papers" ? 0 : 32)
            XCTAssertEqual(object["tokens"] as? Int, p == "papers" ? 3 * 63 : 3 * 31)
            XCTAssertEqual(object["window_start_token"] as? Int, p == "papers" ? nil : 256, "BOS first under llama.cpp's protocol")
            XCTAssertNotNil(object["perplexity"] as? Double)

            let (textStatus, text) = try lancet(["eval", model, "--data", data, "--context", "64", "--max-windows", "3", "--protocol", p])
            XCTAssertEqual(textStatus, 0, text)
            XCTAssertTrue(text.contains("protocol    \(p) ("), text)
            XCTAssertTrue(text.contains("model       \(model)"), text)
            XCTAssertTrue(text.contains("data        \(data)"), text)
            XCTAssertTrue(text.contains("windows     3 of 64 tokens"), text)
        }
    }

    func testEvalRefusesScoreFromWithTheLlamaCppProtocol() throws {
        let (status, _) = try lancet(["eval", try tinyModel(), "--data", try textFile(), "--protocol", "llama.cpp", "--score-from", "3"])
        XCTAssertNotEqual(status, 0)
    }

    func testInspectFitsOneScreenShowsTheZeroShareAndListsTensorsInNaturalOrder() throws {
        let dense = try lancet(["inspect", try tinyModel()])
        XCTAssertEqual(dense.status, 0, dense.stdout)
        XCTAssertTrue(dense.stdout.contains("zero weights:  0.00% of the blocks' matrices"), dense.stdout)
        let prunedModel = try tinyModel(pruned: true)
        let pruned = try lancet(["inspect", prunedModel])
        XCTAssertEqual(pruned.status, 0, pruned.stdout)
        XCTAssertLessThanOrEqual(pruned.stdout.split(separator: "\n").count, 40)
        XCTAssertFalse(pruned.stdout.contains("zero weights:  0.00%"), pruned.stdout)
        for key in ["file type:", "RoPE θ:", "RMS ε:", "BOS 256", "EOS 257", "chat template:", "embeddings:", "provenance:"] {
            XCTAssertTrue(pruned.stdout.contains(key), "\(key) missing from\n\(pruned.stdout)")
        }
        let json = try lancet(["inspect", prunedModel, "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(object["block_matrix_zeros"] as? Int), 0)
    }

    func testInspectOnSmolLM2FitsFortyLinesAndListsAll272TensorsInNaturalOrder() throws {
        let model = ExamplePluginBuild.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("the reference model is missing at \(model)") }
        let summary = try lancet(["inspect", model])
        XCTAssertEqual(summary.status, 0, summary.stdout)
        XCTAssertLessThanOrEqual(summary.stdout.split(separator: "\n").count, 40, summary.stdout)
        for line in ["file type:     Q4_1, 5.74 bits per weight", "RoPE θ:        100000", "RMS ε:         1e-05",
                     "BOS 1 '<|im_start|>' (not added), EOS 2 '<|im_end|>'", "chat template: ChatML", "embeddings:    tied"] {
            XCTAssertTrue(summary.stdout.contains(line), "\(line) missing from\n\(summary.stdout)")
        }
        let table = try lancet(["inspect", model, "--tensors"])
        let rows = table.stdout.split(separator: "\n").drop { !$0.hasPrefix("NAME") }.dropFirst()
        XCTAssertEqual(rows.count, 272)
        let blocks = rows.compactMap { TensorNameOrder.blockIndex(String($0.split(separator: " ")[0])) }
        XCTAssertEqual(blocks, blocks.sorted())
        XCTAssertEqual(Set(rows.map { $0.count }).count, 1, "every row as wide as the others: columns aligned")
    }
}
