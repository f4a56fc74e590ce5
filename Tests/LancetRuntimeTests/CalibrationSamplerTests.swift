import Foundation
import Lancet
import XCTest

/// The `python` calibration sampler draws what CPython's `random` draws, and on the real C4 sample the same
/// windows as the papers' Python code with SmolLM2's tokenizer (fixture README).
final class CalibrationSamplerTests: XCTestCase {
    /// Values printed by CPython 3 (`random.seed(s)` then the calls named).
    func testPythonRandomMatchesCPython() {
        var g = PythonRandom(seed: 0)
        XCTAssertEqual([g.bits(32), g.bits(32)], [3_626_764_237, 1_654_615_998])
        g = PythonRandom(seed: 0)
        XCTAssertEqual((0..<3).map { _ in g.integer(in: 0...1_000_000) }, [885_440, 403_958, 794_772])
        g = PythonRandom(seed: 0)
        XCTAssertEqual((0..<4).map { _ in g.integer(in: 0...2_500_000) }, [1_615_835, 1_764_005, 169_803, 1_085_975])
        g = PythonRandom(seed: 42)  // width 5: 3 bits drawn, values 5…7 rejected
        XCTAssertEqual((0..<6).map { _ in g.integer(in: 5...9) }, [5, 5, 7, 6, 6, 6])
        g = PythonRandom(seed: 12_345_678_901_234_567_890)  // a two-word seed key
        XCTAssertEqual(g.bits(32), 2_199_100_970)
        g = PythonRandom(seed: (1 << 40) + 7)
        XCTAssertEqual([g.bits(33), g.bits(33)], [6_930_804_954, 7_795_006_133])
        g = PythonRandom(seed: 0)
        XCTAssertEqual(g.bits(64), 7_106_521_602_475_165_645)
        g = PythonRandom(seed: 0)  // across the first regeneration of the 624-word state
        let words = (0..<700).map { _ in g.nextWord() }
        XCTAssertEqual([words[623], words[624], words[699]], [2_390_040_247, 2_229_104_038, 3_579_999_110])
    }

    func testTheTwoSamplersDrawFromTheSameRangeButDiffer() {
        let python = CalibrationSampler.python.starts(samples: 4, tokens: 2_500_000 + 2049, length: 2048, seed: 0)
        XCTAssertEqual(python, [1_615_835, 1_764_005, 169_803, 1_085_975], "randint(0, tokens − length − 1)")
        let lancet = CalibrationSampler.lancet.starts(samples: 4, tokens: 2_500_000 + 2049, length: 2048, seed: 0)
        XCTAssertNotEqual(lancet, python)
        XCTAssertTrue(lancet.allSatisfy { (0...2_500_000).contains($0) })
        // Every start of a tiny stream is reachable and none is out of range.
        let all = Set(CalibrationSampler.python.starts(samples: 400, tokens: 12, length: 4, seed: 3))
        XCTAssertEqual(all, Set(0...7))
    }

    /// `Fixtures/c4-calibration-python-seed0.json`: the C4 train sample's token count, the 32 starts Python's
    /// `random` draws for seed 0 and 2048-token windows, and the first and last 4 token ids of each window.
    func testPythonSamplerPicksTheReferenceWindowsOnC4() throws {
        let model = try RealModel.model()
        let root = RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/c4/c4-train.00000-of-01024.first1041docs.text-only.json.gz")
        guard FileManager.default.fileExists(atPath: root.path) else { throw XCTSkip("the C4 sample is missing at \(root.path)") }
        struct Reference: Decodable { var tokens: Int; var starts: [Int]; var first: [[Int32]]; var last: [[Int32]] }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: RealModel.fixtures.appendingPathComponent("c4-calibration-python-seed0.json")))
        let set = try CalibrationSet(corpus: TextCorpus(path: root.path), tokenizer: XCTUnwrap(model.tokenizer), samples: 32, length: 2048, seed: 0, sampler: .python)
        XCTAssertEqual(set.starts, reference.starts)
        XCTAssertEqual(try XCTUnwrap(model.tokenizer).encodeText(TextCorpus(path: root.path).joined(), addSpecialTokens: false, parseSpecial: false).count,
                       reference.tokens)
        XCTAssertEqual(set.windows.map { Array($0.prefix(4)) }, reference.first)
        XCTAssertEqual(set.windows.map { Array($0.suffix(4)) }, reference.last)
    }
}
