import Foundation
import Lancet
import XCTest

/// A recipe's counts are checked against what exists before anything is allocated: calibration windows
/// against the data, contexts against the model, calibration activations against memory.
final class RecipeCountTests: XCTestCase {
    var dir = ""
    let model = TinyLlama.make()

    override func setUpWithError() throws { dir = try makeRecipeFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A recipe in the test folder with `calibration` and `evaluate` as written, one calibrated pass.
    func recipe(calibration: String, evaluate: String = "{data: eval.txt, context: 256}") throws -> Recipe {
        let yaml = "lancet: 1\nmodel: model.gguf\ncalibration: \(calibration)\nevaluate: \(evaluate)\n"
            + "stages:\n  - name: s\n    passes: [fake-calibrated]\noutput: out/result.gguf\n"
        return try RecipeParser.parse(yaml, file: "recipe.yaml", baseDirectory: dir)
    }

    func problems(_ r: Recipe, memoryBytes: UInt64 = 1 << 40) throws -> [RecipeError] {
        RecipeValidator.validate(r, registry: try testRegistry(), model: model, checkFiles: true, memoryBytes: memoryBytes)
    }

    /// The windows the validator allows from `calib.txt` at `context`: its bytes bound its tokens.
    func windowBound(context: Int) -> Int { sampleText().utf8.count + 1 - context }

    func testSamplesBeyondTheWindowsTheDataCanGiveAreRefusedNamingBoth() throws {
        let e = try problems(try recipe(calibration: "{data: calib.txt, samples: 10000000, context: 32}"))
        XCTAssertEqual(e.count, 1)
        assertError(e.first, at: 3, 41, contains: ["calibration.samples: 10000000 windows of 32 tokens requested, the data gives at most \(windowBound(context: 32))"])
        let bound = windowBound(context: 32)
        XCTAssertEqual(try problems(try recipe(calibration: "{data: calib.txt, samples: \(bound), context: 32}")), [])
        XCTAssertEqual(try problems(try recipe(calibration: "{data: calib.txt, samples: \(bound + 1), context: 32}")).map(\.path), ["calibration.samples"])
    }

    func testJSONLinesDocumentsAreCountedWithTheirSeparators() throws {
        let docs = [sampleText(words: 40, seed: 2), sampleText(words: 30, seed: 3)]
        let lines = try docs.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/calib.jsonl"))
        let joined = docs.joined(separator: "\n\n").utf8.count
        let at = joined + 1 - 8
        XCTAssertEqual(try problems(try recipe(calibration: "{data: calib.jsonl, samples: \(at), context: 8}")), [])
        let e = try problems(try recipe(calibration: "{data: calib.jsonl, samples: \(at + 1), context: 8}"))
        XCTAssertTrue(e.first?.reason.contains("the data gives at most \(at) (its \(joined) bytes") == true, "\(e)")
    }

    func testUnreadableCalibrationDataIsReportedByValidation() throws {
        try Data("{\"text\": 1}\n".utf8).write(to: URL(fileURLWithPath: dir + "/calib.jsonl"))
        let e = try problems(try recipe(calibration: "{data: calib.jsonl, samples: 4, context: 8}"))
        XCTAssertEqual(e.map(\.path), ["calibration.data"])
        XCTAssertTrue(e.first?.reason.contains("calib.jsonl:1: no string field 'text'") == true, "\(e)")
    }

    func testCalibrationSetRefusesMoreWindowsThanStartOffsetsBeforeDrawing() throws {
        let bytes = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) }
        let tokenizer = try Tokenizer(spec: TokenizerSpec(source: "bytes", kind: .byteLevelBPE, tokens: bytes + ["Ġt", "Ġth", "he"],
                                                          merges: [MergeRule("Ġ", "t"), MergeRule("Ġt", "h"), MergeRule("h", "e")], preTokenizer: "gpt-2"))
        let corpus = try TextCorpus(path: dir + "/calib.txt")
        let tokens = tokenizer.encodeText(corpus.joined(), addSpecialTokens: false, parseSpecial: false).count
        XCTAssertLessThan(tokens, corpus.joined().utf8.count, "merges make fewer tokens than bytes")
        XCTAssertLessThanOrEqual(tokens - 32, windowBound(context: 32), "the validator's bound holds")
        let all = try CalibrationSet(corpus: corpus, tokenizer: tokenizer, samples: tokens - 32, length: 32, seed: 3)
        XCTAssertEqual(all.windows.count, tokens - 32)
        XCTAssertThrowsError(try CalibrationSet(corpus: corpus, tokenizer: tokenizer, samples: tokens - 31, length: 32, seed: 3)) { e in
            XCTAssertEqual("\(e)", "\(dir)/calib.txt: calibration.samples: \(tokens - 31) windows of 32 tokens requested, the data gives at most \(tokens - 32) (\(tokens) tokens, one window per start offset)")
        }
        XCTAssertThrowsError(try CalibrationSet(corpus: corpus, tokenizer: tokenizer, samples: 10_000_000, length: 2048, seed: 0)) { e in
            XCTAssertTrue("\(e)".contains("10000000 windows of 2048 tokens requested, the data gives at most \(tokens - 2048) (\(tokens) tokens"), "\(e)")
        }
    }

    func testContextsLongerThanTheModelsAreRefused() throws {
        let limit = model.config.contextLength
        let e = try problems(try recipe(calibration: "{data: calib.txt, samples: 4, context: \(limit + 1)}", evaluate: "{data: eval.txt, context: \(4 * limit)}"))
        XCTAssertEqual(e.map(\.description), [
            "recipe.yaml:3:53 calibration.context: \(limit + 1) tokens per window requested, the model's context length is \(limit)",
            "recipe.yaml:4:37 evaluate.context: \(4 * limit) tokens per window requested, the model's context length is \(limit)",
        ])
        XCTAssertEqual(try problems(try recipe(calibration: "{data: calib.txt, samples: 4, context: \(limit)}", evaluate: "{data: eval.txt, context: \(limit)}")), [])
        let defaults = try problems(try recipe(calibration: "{data: calib.txt, samples: 4}", evaluate: "{data: eval.txt}"))
        XCTAssertEqual(defaults.map(\.description), [
            "recipe.yaml:3:21 calibration.context: 2048 tokens per window requested (the default), the model's context length is \(limit)",
            "recipe.yaml:4:18 evaluate.context: 2048 tokens per window requested (the default), the model's context length is \(limit)",
        ])
    }

    func testCalibrationActivationsBeyondMemoryAreRefused() throws {
        let r = try recipe(calibration: "{data: calib.txt, samples: 6, context: 32}")
        let need = UInt64(2 * 6 * 32 * model.config.hiddenSize * 4)
        XCTAssertEqual(try problems(r, memoryBytes: need), [])
        let e = try problems(r, memoryBytes: need - 1)
        XCTAssertEqual(e.map(\.path), ["calibration.samples"])
        XCTAssertTrue(e.first?.reason.contains("6 windows of 32 tokens need two activation tensors of 6 × 32 × \(model.config.hiddenSize) floats") == true, "\(e)")
        let overflow = try problems(try recipe(calibration: "{data: calib.txt, samples: \(Int.max), context: 512}"), memoryBytes: .max)
        XCTAssertEqual(overflow.map(\.path), ["calibration.samples", "calibration.samples"], "too much memory and too few windows")
    }
}
