import Foundation
import Lancet
import XCTest

/// Which predictions a perplexity scores: every one by default, those from `scoreFrom` on (llama-perplexity's
/// second half of each window) when set — each against the NLL of every row computed by hand from the logits.
final class PerplexityScoringTests: XCTestCase {
    func testScoreFromAveragesOnlyThePredictionsFromThatPositionOn() throws {
        let model = TinyLlama.make(seed: 31)
        var g = SeededGenerator(seed: 4)
        let tokens = (0..<(3 * 32)).map { _ in Int32(g.nextIndex(below: 64)) }
        let runner = ModelRunner(model: model)
        // Per window, the NLL of each of its 31 predictions, by hand in Double.
        let rows: [[Double]] = try (0..<3).map { w in
            let window = Array(tokens[(w * 32)..<((w + 1) * 32)])
            let logits = try runner.logits(window, context: ExecutionContext(batch: 1, length: 32))
            return (0..<31).map { r in
                let row = (0..<logits.shape[1]).map { Double(logits[r, $0]) }
                let top = row.max()!
                return top + Foundation.log(row.map { Foundation.exp($0 - top) }.reduce(0, +)) - row[Int(window[r + 1])]
            }
        }
        for first in [0, 16, 30] {
            var evaluator = PerplexityEvaluator(model: model, context: 32)
            evaluator.scoreFrom = first
            let result = try evaluator.evaluate(tokens: tokens)
            let expected = rows.map { $0[first...].reduce(0, +) / Double(31 - first) }
            for (found, wanted) in zip(result.windowNLL, expected) { XCTAssertEqual(found, wanted, accuracy: 1e-5, "from \(first)") }
            XCTAssertEqual(result.tokens, 3 * (31 - first))
            XCTAssertEqual(Foundation.log(result.perplexity), expected.reduce(0, +) / 3, accuracy: 1e-5, "ppl = exp(mean of window NLLs)")
        }
    }
}
