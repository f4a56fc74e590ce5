import XCTest
@testable import LancetTensor
import Foundation

final class ParallelTests: XCTestCase {
    func testParallelForCoversEveryIndexOnceInContiguousBalancedChunks() {
        for count in [0, 1, 2, 3, 7, 100, 1001] {
            for chunks in [nil, 1, 2, 3, 8, 5000] as [Int?] {
                let range = 10..<(10 + count)
                let lock = NSLock()
                var pieces: [Range<Int>] = []
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    parallelFor(range, chunks: chunks) { piece in
                        for i in piece { h[i - 10] += 1 }  // disjoint pieces: no race
                        lock.lock(); pieces.append(piece); lock.unlock()
                    }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: count), "count \(count) chunks \(String(describing: chunks))")
                pieces.sort { $0.lowerBound < $1.lowerBound }
                if count > 0 {
                    XCTAssertEqual(pieces.count, min(chunks ?? processorCount, count))
                    XCTAssertLessThanOrEqual(pieces.map(\.count).max()! - pieces.map(\.count).min()!, 1, "balanced")
                    XCTAssertEqual(pieces.first!.lowerBound, range.lowerBound)
                    XCTAssertEqual(pieces.last!.upperBound, range.upperBound)
                    for (p, q) in zip(pieces, pieces.dropFirst()) { XCTAssertEqual(p.upperBound, q.lowerBound, "contiguous") }
                }
            }
        }
    }

    func testParallelForRunsSmallRangesSeriallyAsOneChunk() {
        var calls: [Range<Int>] = []
        parallelFor(0..<150, chunks: 4, minimumChunkSize: 100) { calls.append($0) }
        XCTAssertEqual(calls, [0..<150])
        XCTAssertGreaterThanOrEqual(processorCount, 1)
    }
}
