import Foundation
import Lancet
import XCTest

/// Golden tests against transformers' outputs on the same F32 weights (../shared/reference, committed slices).
final class ReferenceExactnessTests: XCTestCase {
    func testNextTokenLogitsMatchTransformersWithinOneThousandthRelative() throws {
        let model = try RealModel.model()
        let reference = try RealModel.numbers("plain-prompt-logits.txt.gz").map(Float.init)
        XCTAssertEqual(reference.count, 49152)
        let logits = try ModelRunner(model: model).nextTokenLogits([504, 3575, 282, 4649, 314])
        let scale = reference.map(abs).max()!
        let worst = zip(logits, reference).map { abs($0 - $1) }.max()!
        print("max |Δlogit| = \(worst), max |logit| = \(scale), relative \(worst / scale)")
        XCTAssertLessThanOrEqual(worst / scale, 1e-3)
        XCTAssertEqual(logits.indices.max { logits[$0] < logits[$1] }, 7042, "argmax is ' Paris'")
    }

    func testFirstWikiTextWindowNLLMatchesTransformers() throws {
        let model = try RealModel.model()
        let ids = try RealModel.numbers("wiki-test-window0-ids.txt").map { Int32($0) }
        XCTAssertEqual(ids.count, 2048)
        let nll = try PerplexityEvaluator(model: model, context: 2048).windowNLL(ids)
        print("window 0 NLL \(nll), reference 2.7148358821868896")
        XCTAssertEqual(nll, 2.7148358821868896, accuracy: 2.7148358821868896 * 1e-4)
    }
}
