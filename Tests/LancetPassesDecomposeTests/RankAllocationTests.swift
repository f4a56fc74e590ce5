import Foundation
import Lancet
@testable import LancetPassesDecompose
import XCTest

/// The global rank allocation: the budget is met exactly, and parameters go where the spectra say they matter.
final class RankAllocationTests: XCTestCase {
    /// Linears of mixed shapes with spectra decaying at different rates.
    static func linears(seed: UInt64) -> [RankAllocation.Linear] {
        var g = SeededGenerator(seed: seed)
        let shapes = [(64, 64), (16, 64), (16, 64), (64, 64), (160, 64), (160, 64), (64, 160)]
        return (0..<3).flatMap { block in
            shapes.enumerated().map { k, s in
                let decay = 0.02 + 0.3 * Double(g.nextIndex(below: 100)) / 100
                let spectrum = (0..<min(s.0, s.1)).map { Float(exp(-decay * Double($0))) }
                return RankAllocation.Linear(block: block, node: "n\(k)", out: s.0, inputs: s.1, spectrum: spectrum)
            }
        }
    }

    func testTheBudgetIsMetExactly() {
        for seed in 0..<5 {
            let ls = Self.linears(seed: UInt64(seed))
            for ratio in [0.3, 0.6, 0.8] {
                let (ranks, kept, budget) = RankAllocation.allocate(ls, ratio: ratio)
                let dense = ls.reduce(0) { $0 + $1.out * $1.inputs }
                XCTAssertEqual(budget, Int((ratio * Double(dense)).rounded(.down)))
                XCTAssertEqual(kept, zip(ls, ranks).reduce(0) { $0 + $1.0.costPerRank * $1.1 }, "kept is what the ranks cost")
                XCTAssertLessThanOrEqual(kept, budget, "never over the budget")
                // Short of it by less than the cheapest linear that could still grow.
                let growable = zip(ls, ranks).filter { $0.1 < $0.0.maximumRank }.map { $0.0.costPerRank }
                if let cheapest = growable.min() { XCTAssertLessThan(budget - kept, cheapest, "seed \(seed) ratio \(ratio)") }
                for (l, r) in zip(ls, ranks) { XCTAssert((1...l.maximumRank).contains(r)) }
            }
        }
    }

    func testFlatSpectraGetMoreRankThanSteepOnes() {
        let flat = (0..<64).map { _ in Float(1) }, steep = (0..<64).map { Float(exp(-0.5 * Double($0))) }
        let ls = [RankAllocation.Linear(block: 0, node: "flat", out: 64, inputs: 64, spectrum: flat),
                  RankAllocation.Linear(block: 0, node: "steep", out: 64, inputs: 64, spectrum: steep)]
        let (ranks, _, _) = RankAllocation.allocate(ls, ratio: 0.5)
        XCTAssertGreaterThan(ranks[0], ranks[1])
    }

    func testBudgetOptionsAreCheckedByName() {
        XCTAssertThrowsError(try RankBudget(rank: 0, ratio: 1.5, allocation: "uniform")) { XCTAssertEqual(($0 as? PassOptionError)?.option, "ratio") }
        XCTAssertThrowsError(try RankBudget(rank: 8, ratio: 0.8, allocation: "global")) { XCTAssertEqual(($0 as? PassOptionError)?.option, "rank") }
        XCTAssertThrowsError(try RankBudget(rank: 0, ratio: 0.8, allocation: "greedy")) { XCTAssertEqual(($0 as? PassOptionError)?.option, "allocation") }
        XCTAssertEqual(try RankBudget(rank: 0, ratio: 0.5, allocation: "uniform").uniformRank(out: 64, inputs: 192), 24)
    }

    /// The measured sensitivity: a truncated linear moves its block's output, more at a lower probe rank.
    func testTruncationSensitivityMeasuresTheBlockOutputError() throws {
        let model = TinyLlama.make(TinyLlama.Sizes(), seed: 6)
        var g = SeededGenerator(seed: 1)
        let inputs = Tensor.randomNormal(shape: [3 * 16, model.config.hiddenSize], std: 1, generator: &g)
        let block = model.blocks[0]
        let names = block.nodes(of: LinearOp.self).map(\.node.name)
        func measure(rank: Int) throws -> [String: [Float]] {
            let a = TruncationSensitivity(linears: names.map { ($0, rank) }, windows: 2, weighting: { _, x in try .whitening(gram: gram(x), damping: 1e-6) },
                                          method: "test")
            return try a.compute(block: block, index: 0, inputs: inputs, length: 16).sums.mapValues(\.scalars)
        }
        let low = try measure(rank: 2), high = try measure(rank: 6)
        XCTAssertEqual(Set(low.keys), Set(names))
        for name in names {
            XCTAssertGreaterThan(low[name]![0], 0, name)
            XCTAssertGreaterThan(low[name]![0], high[name]![0], "\(name): a lower rank moves the block more")
            XCTAssertGreaterThan(low[name]![1], high[name]![1], "\(name): and discards more energy")
        }
    }
}

