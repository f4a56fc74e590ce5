import Foundation
import XCTest

/// `lancet bench MODEL --latency-from DENSE`: the prefill DENSE's cached latency table predicts for MODEL, refused with
/// the command that measures the table when none is cached, and for the dense model itself the table's own prediction.
final class LatencyPredictionCommandTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-latency-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try CommandLineTool.writeFixtures(into: folder)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// `lancet arguments…` with the latency cache in the test's folder (never the user's).
    func lancet(_ arguments: String...) throws -> CommandLineTool.Result {
        try CommandLineTool.run(executable: "/usr/bin/env", ["LANCET_CACHE=\(folder)/cache", CommandLineTool.path] + arguments, in: folder)
    }

    func testThePredictionNeedsACachedTableAndReadsTheModelsBlocks() throws {
        let missing = try lancet("bench", "model.gguf", "--latency-from", "model.gguf", "--latency-tokens", "16", "--context", "16",
                                 "--decode-tokens", "1", "--repetitions", "1")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no latency table of model.gguf at 16 tokens is cached")
                      && missing.stderr.contains("lancet bench model.gguf --latency-table --latency-tokens 16"), missing.stderr)
        let measure = try lancet("bench", "model.gguf", "--latency-table", "--latency-tokens", "16", "--latency-grid", "32", "--repetitions", "1")
        XCTAssertEqual(measure.status, 0, measure.stderr)
        let predicted = try lancet("bench", "model.gguf", "--latency-from", "model.gguf", "--latency-tokens", "16", "--context", "16",
                                   "--decode-tokens", "1", "--repetitions", "1", "--json")
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(predicted.stdout.utf8)) as? [String: Any])
        let row = try XCTUnwrap(report["predicted_prefill"] as? [String: Any])
        let seconds = try XCTUnwrap(row["seconds"] as? Double), dense = try XCTUnwrap(row["dense_seconds"] as? Double)
        XCTAssertGreaterThan(seconds, 0)
        XCTAssertEqual(seconds, dense, accuracy: 1e-12, "the dense model's blocks read back as the dense choice")
        XCTAssertEqual(row["tokens"] as? Int, 16)
        let alone = try lancet("bench", "--latency-from", "model.gguf")
        XCTAssertEqual(alone.status, 64)
        XCTAssertTrue(alone.stderr.contains("--latency-from predicts a MODEL's prefill"), alone.stderr)
    }
}
