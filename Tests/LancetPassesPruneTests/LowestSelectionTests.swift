import Lancet
@testable import LancetPassesPrune
import XCTest

/// The linear-time choice of the k lowest scores picks exactly what a sort by (score, index) picks.
final class LowestSelectionTests: XCTestCase {
    /// The first k indices of a stable sort by value, as a set.
    static func sortedChoice(_ values: [Float], _ k: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] < values[$1] : $0 < $1 }.prefix(k)).sorted()
    }

    func testMarksTheSameEntriesAsASortByValueThenIndex() {
        var rng = SeededGenerator(seed: 7)
        for trial in 0..<200 {
            let count = 1 + rng.nextIndex(below: trial < 100 ? 40 : 3000)
            // Half the trials draw from a handful of values, so ties across the threshold are common.
            let distinct = trial % 2 == 0 ? 1 + rng.nextIndex(below: 5) : 1_000_000
            let values = (0..<count).map { _ in Float(rng.nextIndex(below: distinct)) * 0.5 - 1 }
            let k = rng.nextIndex(below: count + 2)
            var marked: [Int] = []
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { scratch.deallocate() }
            values.withUnsafeBufferPointer { LowestSelection.mark($0.baseAddress!, count: count, k: k, scratch: scratch) { marked.append($0) } }
            XCTAssertEqual(marked, Self.sortedChoice(values, min(k, count)), "trial \(trial): count \(count), k \(k)")
        }
    }

    func testSelectReturnsTheValueOfEachRank() {
        var rng = SeededGenerator(seed: 11)
        let values = (0..<500).map { _ in Float(rng.nextIndex(below: 50)) }
        let sorted = values.sorted()
        for rank in [0, 1, 17, 249, 250, 498, 499] {
            var copy = values
            let v = copy.withUnsafeMutableBufferPointer { LowestSelection.select($0.baseAddress!, count: 500, rank: rank) }
            XCTAssertEqual(v, sorted[rank], "rank \(rank)")
        }
    }
}
