import Lancet
@testable import LancetPassesCurvature
@testable import LancetPassesPrune
import XCTest

/// `surgeon`'s `pairs: sequential`: the 2:4 pairs an OBS sweep over the columns on the curvature's A chooses.
final class SurgeonPairsTests: XCTestCase {
    /// A curvature over `inputs` inputs whose A has correlated inputs (a random Gram), or a diagonal one.
    static func curvature(out: Int, inputs: Int, diagonalA: Bool = false, seed: UInt64) throws -> KroneckerCurvature {
        var generator = SeededGenerator(seed: seed)
        let gx = Tensor.randomNormal(shape: [3 * out, out], generator: &generator)
        var a = gram(Tensor.randomNormal(shape: [2 * inputs, inputs], generator: &generator))
        if diagonalA {
            a.withUnsafeMutableBufferPointer { p in for i in 0..<inputs { for j in 0..<inputs where i != j { p[i * inputs + j] = 0 } } }
        }
        return try KroneckerCurvature(KroneckerFactors(a: a, g: gram(gx), tokens: 3 * out), dampG: 0.01, dampA: 0.01)
    }

    /// Every group chosen: the mask is SparseGPT's 2:4 choice on the same damped A (its solver run as one column
    /// block, so both apply each dropped weight's error to the later columns in the same order).
    func testEveryGroupChosenGivesSparseGPTsChoiceOnA() throws {
        let (out, inputs) = (12, 32)
        let curvature = try Self.curvature(out: out, inputs: inputs, seed: 3)
        var generator = SeededGenerator(seed: 4)
        let w = Tensor.randomNormal(shape: [out, inputs], generator: &generator)
        let all = Mask(shape: w.shape, keep: (0..<(out * inputs)).map { $0 % 4 < 2 ? 0 : 1 })
        let mask = try curvature.sequentialPairs(w, fresh: all, existing: nil)
        let pattern = try SparsityPattern.parse(pattern: "2:4", sparsity: 0.5, scope: "row")
        let sparseGPT = try SparseGPTSolver.prune(weight: w, gram: curvature.a, pattern: pattern, blockSize: inputs, damping: 0)
        XCTAssertEqual(mask.keep, sparseGPT.mask.keep)
        // The correlations matter: on the same weights the independent choice (two cheapest own costs) differs.
        let independent = SurgeonElements.semiStructured([.init(block: 0, node: "w", costs: curvature.elementCosts(w))], count: out * inputs / 4)
        XCTAssertNotEqual(mask.keep, independent[0].keep)
    }

    /// With a diagonal A no removal moves another weight, so the sweep drops each group's two cheapest own costs.
    func testDiagonalAGivesTheIndependentChoice() throws {
        let (out, inputs) = (8, 16)
        let curvature = try Self.curvature(out: out, inputs: inputs, diagonalA: true, seed: 6)
        var generator = SeededGenerator(seed: 7)
        let w = Tensor.randomNormal(shape: [out, inputs], generator: &generator)
        let independent = SurgeonElements.semiStructured([.init(block: 0, node: "w", costs: curvature.elementCosts(w))], count: out * inputs / 4)[0]
        XCTAssertEqual(try curvature.sequentialPairs(w, fresh: independent, existing: nil).keep, independent.keep)
    }

    /// Only the groups `fresh` chooses lose a pair; groups an earlier shot pruned keep exactly their zeros; the rest
    /// keep all four.
    func testUnchosenGroupsStayAndEarlierShotsKeepTheirPairs() throws {
        let (out, inputs) = (4, 16)
        let curvature = try Self.curvature(out: out, inputs: inputs, seed: 8)
        var generator = SeededGenerator(seed: 9)
        var w = Tensor.randomNormal(shape: [out, inputs], generator: &generator)
        var earlier = [UInt8](repeating: 1, count: out * inputs), fresh = earlier
        for r in 0..<out {
            earlier[r * inputs + 1] = 0                                   // group 0: pruned before (inputs 1 and 2)
            earlier[r * inputs + 2] = 0
            fresh[r * inputs + 8 + r % 4] = 0                             // group 2: chosen now
            for j in 0..<4 { fresh[r * inputs + j] = earlier[r * inputs + j] }
        }
        let existing = Mask(shape: w.shape, keep: earlier)
        existing.apply(to: &w)
        let mask = try curvature.sequentialPairs(w, fresh: Mask(shape: w.shape, keep: fresh), existing: existing)
        for r in 0..<out {
            let row = Array(mask.keep[(r * inputs)..<((r + 1) * inputs)])
            XCTAssertEqual(Array(row[0..<4]), [1, 0, 0, 1], "row \(r): the earlier pair stays")
            XCTAssertEqual(Array(row[4..<8]), [1, 1, 1, 1], "row \(r): group 1 not chosen")
            XCTAssertEqual(row[8..<12].filter { $0 == 0 }.count, 2, "row \(r): group 2 loses a pair")
            XCTAssertEqual(Array(row[12..<16]), [1, 1, 1, 1], "row \(r): group 3 not chosen")
        }
    }

    /// Through the pass: every targeted linear ends exactly 2:4, the dropped weights zero; the option is refused
    /// outside 2:4.
    func testThePassLeavesExactTwoOfFour() throws {
        let dense = SurgeonTests.model(blocks: 2)
        let windows = SurgeonTests.windows(dense, count: 4, length: 16)
        let (model, report) = try SurgeonTests.run([("structure", "2:4"), ("shots", "2"), ("pairs", "sequential")], on: dense, windows: windows)
        XCTAssertEqual(report.metrics["sparsity"]!, 0.5, accuracy: 1e-9)
        for block in model.blocks {
            XCTAssertEqual(block.masks.count, 7)
            for (name, mask) in block.masks {
                let w = try XCTUnwrap(block.parameters[name])
                for g in stride(from: 0, to: mask.keep.count, by: 4) {
                    XCTAssertEqual(mask.keep[g..<(g + 4)].filter { $0 == 0 }.count, 2, name)
                    for j in g..<(g + 4) where mask.keep[j] == 0 { XCTAssertEqual(w.scalars[j], 0, name) }
                }
            }
        }
        var o = SurgeonPass.Options()
        o.structure = "unstructured"
        o.pairs = "sequential"
        XCTAssertThrowsError(try SurgeonPass(options: o)) { XCTAssertEqual(($0 as? PassOptionError)?.option, "pairs") }
        o.structure = "2:4"
        o.pairs = "best"
        XCTAssertThrowsError(try SurgeonPass(options: o)) { XCTAssertEqual(($0 as? PassOptionError)?.option, "pairs") }
    }
}
