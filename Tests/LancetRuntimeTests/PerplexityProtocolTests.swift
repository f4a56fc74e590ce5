import Foundation
import Lancet
import XCTest

/// The two perplexity protocols: the papers' (every prediction, windows as cut, the default) and llama.cpp's
/// (`llama-perplexity`: predictions from position context/2 on, BOS placed first in every window when the
/// tokenizer adds BOS), against window NLLs computed directly and against llama-perplexity's own number.
final class PerplexityProtocolTests: XCTestCase {
    /// A tokenizer that maps bytes to ids 2… and prepends BOS (id 1) when `addsBOS`.
    final class ByteTokenizer: ModelTokenizer, @unchecked Sendable {
        let addsBOS: Bool
        init(addsBOS: Bool) { self.addsBOS = addsBOS }
        func encodeText(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32] {
            (addSpecialTokens && addsBOS ? [1] : []) + text.utf8.map { 2 + Int32($0) % 62 }
        }
        func decodeText(_ ids: [Int32]) -> String { "" }
        func decodeTokenBytes(_ ids: [Int32]) -> [UInt8] { [] }
        var beginToken: Int32? { 1 }
        var endToken: Int32? { 0 }
        var stopTokens: Set<Int32> { [0] }
        var chatTemplateText: String? { nil }
        var tokenCount: Int { 64 }
    }

    /// A tiny model with a `ByteTokenizer`.
    static func model(seed: UInt64, addsBOS: Bool) -> Model {
        var model = TinyLlama.make(seed: seed)
        model.tokenizer = ByteTokenizer(addsBOS: addsBOS)
        return model
    }

    /// `count` seeded ids in 2…63.
    static func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32(2 + g.nextIndex(below: 62)) }
    }

    func testThePapersProtocolIsTheDefaultAndScoresEveryPredictionOfWindowsAsCut() throws {
        let model = Self.model(seed: 5, addsBOS: true)
        let tokens = Self.tokens(3 * 32 + 7, seed: 1)
        let byDefault = PerplexityEvaluator(model: model, context: 32)
        XCTAssertEqual(byDefault.evaluationProtocol, .papers)
        XCTAssertEqual(byDefault.scoreFrom, 0)
        XCTAssertNil(byDefault.windowStartToken, "the papers' protocol runs windows as cut, BOS-adding tokenizer or not")
        let result = try byDefault.evaluate(tokens: tokens)
        let direct = try (0..<3).map { w in try byDefault.windowNLL(Array(tokens[(w * 32)..<((w + 1) * 32)])) }
        XCTAssertEqual(result.windowNLL, direct, "bit-identical to the windows evaluated one by one")
        XCTAssertEqual(result.evaluationProtocol, .papers)
        XCTAssertEqual(result.context, 32)
        XCTAssertEqual(result.tokens, 3 * 31)
        XCTAssertEqual(result.windows, 3, "the trailing 7 tokens are dropped")
    }

    func testLlamaCppScoresTheSecondHalfOfEachWindowAndRunsWindowsAsCutWithoutBOS() throws {
        let model = Self.model(seed: 6, addsBOS: false)
        let tokens = Self.tokens(2 * 32, seed: 2)
        let llama = PerplexityEvaluator(model: model, context: 32, protocol: .llamaCpp)
        XCTAssertEqual(llama.scoreFrom, 16)
        XCTAssertNil(llama.windowStartToken, "no BOS placed when the tokenizer adds none")
        var papers = PerplexityEvaluator(model: model, context: 32)
        papers.scoreFrom = 16
        let (a, b) = (try llama.evaluate(tokens: tokens), try papers.evaluate(tokens: tokens))
        XCTAssertEqual(a.windowNLL, b.windowNLL)
        XCTAssertEqual(a.tokens, 2 * 15, "positions 16…30 predict tokens 17…31")
        XCTAssertEqual(a.evaluationProtocol, .llamaCpp)
        XCTAssertEqual(a.scoreFrom, 16)
        XCTAssertTrue(a.protocolSummary.contains("positions 16…30"), a.protocolSummary)
    }

    func testLlamaCppPlacesBOSFirstInEveryWindowWhenTheTokenizerAddsBOS() throws {
        let model = Self.model(seed: 7, addsBOS: true)
        let tokens = Self.tokens(3 * 32, seed: 3)
        let llama = PerplexityEvaluator(model: model, context: 32, protocol: .llamaCpp)
        XCTAssertEqual(llama.windowStartToken, 1)
        let result = try llama.evaluate(tokens: tokens)
        XCTAssertEqual(result.windowStartToken, 1)
        for w in 0..<3 {
            var window = Array(tokens[(w * 32)..<((w + 1) * 32)])
            let asCut = try llama.windowNLL(window)
            window[0] = 1
            XCTAssertEqual(result.windowNLL[w], try llama.windowNLL(window), "window \(w): BOS in place of its first token")
            XCTAssertNotEqual(result.windowNLL[w], asCut, "window \(w): the first token matters to the second half")
        }
    }

    /// llama-perplexity (llama.cpp c392e50) on the F32 dequantisation of the reference model, first chunk of
    /// `wiki.test.raw`: `llama-perplexity -m smollm2-135m-f32.gguf -f wiki.test.raw -c 2048 --chunks 4 -t 2`
    /// printed `[1]16.4362` (the Q4_1 file dequantised by Lancet holds the same weights).
    func testLlamaCppProtocolMatchesLlamaPerplexityOnTheFirstWikiTextChunk() throws {
        let model = try RealModel.model()
        let ids = try RealModel.numbers("wiki-test-window0-ids.txt").map { Int32($0) }
        let result = try PerplexityEvaluator(model: model, context: 2048, protocol: .llamaCpp).evaluate(tokens: ids)
        print("llama.cpp protocol, window 0: perplexity \(result.perplexity), llama-perplexity 16.4362")
        XCTAssertEqual(result.tokens, 1023)
        XCTAssertEqual(result.perplexity, 16.4362, accuracy: 16.4362 * 1e-3, "within 0.1% of llama-perplexity")
    }
}
