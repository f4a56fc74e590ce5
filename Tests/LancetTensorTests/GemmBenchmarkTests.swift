import XCTest
@testable import LancetTensor

final class GemmBenchmarkTests: XCTestCase {
    func testMeasurementOfASmallShapeReportsConsistentTimings() {
        let r = GemmBenchmark.measure(m: 64, n: 48, k: 32, minimumSeconds: 0.01)
        XCTAssertEqual(r.flops, 2 * 64 * 48 * 32)
        XCTAssertGreaterThanOrEqual(r.repetitions, 1)
        XCTAssertGreaterThan(r.secondsPerCall, 0)
        XCTAssertLessThanOrEqual(r.secondsPerCall, r.medianSecondsPerCall)
        XCTAssertGreaterThan(r.gflops, 0)
        XCTAssertGreaterThanOrEqual(r.gflops, r.medianGFLOPS)
        XCTAssertEqual(GemmBenchmark.peakGFLOPS(of: [r]), r.gflops)
        XCTAssertTrue(r.description.hasPrefix("m=64 n=48 k=32 Bᵀ:"), r.description)
    }

    func testRooflineCoversTheSquareReferenceAndTheModelShapes() {
        let shapes = GemmBenchmark.rooflineShapes.map { [$0.m, $0.n, $0.k] }
        XCTAssertEqual(shapes, [[2048, 2048, 2048], [2048, 1536, 576], [2048, 576, 1536], [2048, 576, 576], [2048, 49152, 576]])
    }
}
