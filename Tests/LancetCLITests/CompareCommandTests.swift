import Foundation
import XCTest

/// `lancet compare` on the tiny model against a magnitude-pruned copy: one screen of text, a JSON object that
/// parses and says what changed, and an SVG plot.
final class CompareCommandTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-compare-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try CommandLineTool.writeFixtures(into: folder)
        let pruned = try CommandLineTool.run(["apply", "model.gguf", "-p", "magnitude(sparsity=0.5)", "-o", "pruned.gguf", "--quiet"], in: folder)
        XCTAssertEqual(pruned.status, 0, pruned.stderr)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private let common = ["--data", "eval.txt", "--context", "32", "--max-windows", "2", "--calibration-context", "16",
                          "--prefill-tokens", "16", "--decode-tokens", "4", "--rounds", "1"]

    func testTextFitsOneScreenAndNamesTheDifferences() throws {
        let r = try CommandLineTool.run(["compare", "model.gguf", "pruned.gguf", "--plot", "drift.svg", "--quiet"] + common, in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertLessThanOrEqual(lines.count, 24, r.stdout)
        for label in ["file size", "parameters", "non-zero", "block shapes", "perplexity", "prefill tok/s", "decode tok/s", "final normed states", "plot: drift.svg"] {
            XCTAssertTrue(r.stdout.contains(label), "missing '\(label)':\n\(r.stdout)")
        }
        let svg = try String(contentsOfFile: folder + "/drift.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<polyline"), svg)
        XCTAssertEqual(r.stderr, "", "--quiet")
    }

    func testJSONReportsHalfTheWeightsZeroAndAPositiveDrift() throws {
        let r = try CommandLineTool.run(["compare", "model.gguf", "pruned.gguf", "--json"] + common, in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let a = try XCTUnwrap(object["a"] as? [String: Any]), b = try XCTUnwrap(object["b"] as? [String: Any])
        XCTAssertEqual(a["parameters"] as? Int, b["parameters"] as? Int)
        let (nonZeroA, nonZeroB) = (try XCTUnwrap(a["nonZeroParameters"] as? Int), try XCTUnwrap(b["nonZeroParameters"] as? Int))
        XCTAssertLessThan(nonZeroB, nonZeroA, "magnitude pruning zeroes weights")
        XCTAssertNotNil(a["perplexity"] as? Double)
        XCTAssertNotNil(b["decodeTokensPerSecond"] as? Double)
        let drift = try XCTUnwrap(object["drift"] as? [String: Any])
        let perBlock = try XCTUnwrap(drift["perBlock"] as? [Double])
        XCTAssertEqual(perBlock.count, try XCTUnwrap(a["blocks"] as? Int))
        XCTAssertTrue(perBlock.allSatisfy { $0 > 0 }, "\(perBlock)")
        XCTAssertGreaterThan(try XCTUnwrap(drift["final"] as? Double), 0)
    }
}
