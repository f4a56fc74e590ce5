import Foundation
import Lancet
@testable import LancetPassesPrune
@testable import LancetSurgery
import XCTest

/// OWL: per-block sparsities from outlier ratios, planned once on the dense model before the sweep.
final class OutlierAllocationTests: XCTestCase {
    func testOWLSparsitiesAverageToTheTargetAndStayWithinTwoLambda() {
        var g = SeededGenerator(seed: 3)
        for trial in 0..<20 {
            let n = 2 + trial % 7
            let ratios = (0..<n).map { _ in g.nextDouble() * 0.1 }
            let weights = (0..<n).map { i in i == 0 && trial % 3 == 0 ? 0 : 1 + Double(g.nextIndex(below: 4)) }
            let (target, lambda) = (0.3 + 0.4 * g.nextDouble(), 0.02 + 0.06 * g.nextDouble())
            let s = SparsityAllocation.owlSparsities(ratios: ratios, weights: weights, target: target, lambda: lambda)
            let mean = zip(s, weights).reduce(0.0) { $0 + $1.0 * $1.1 } / weights.reduce(0, +)
            XCTAssertEqual(mean, target, accuracy: 1e-12, "trial \(trial)")
            for i in 0..<n where weights[i] > 0 {
                XCTAssertLessThanOrEqual(abs(s[i] - target), 2 * lambda + 1e-12)
                for j in 0..<n where weights[j] > 0 && ratios[j] > ratios[i] { XCTAssertLessThan(s[j], s[i], "more outliers, fewer pruned") }
            }
        }
        XCTAssertEqual(SparsityAllocation.owlSparsities(ratios: [0.1, 0.1], weights: [1, 1], target: 0.5, lambda: 0.08), [0.5, 0.5])
    }

    func testOutlierRatioCountsScoresAboveMTimesTheirPooledMean() {
        let a = Tensor(shape: [2, 3], [1, 1, 1, 1, 1, 10]), b = Tensor(shape: [1, 2], [1, 30])
        // mean = 46 / 8 = 5.75; above 2 × 5.75 = 11.5: only 30.
        XCTAssertEqual(SparsityAllocation.outlierRatio([a, b], m: 2), 1.0 / 8)
        XCTAssertEqual(SparsityAllocation.outlierRatio([a, b], m: 1), 2.0 / 8)
    }

    func testPlanMeasuresEveryBlocksOutlierRatioOnTheDenseModel() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        let fx = PruneFixture(sizes, seed: 8, windows: 3, length: 16)
        let pass = try makePass(WandaPass.self, [("sparsity", "0.5"), ("allocation", "owl"), ("owl_m", "3")])
        let context = PlanContext(model: fx.model, calibration: fx.tokens, sweep: fx.sweep, targets: .all, seed: 0, log: { _ in })
        let facts = try pass.plan(model: fx.model, context: context)
        let ratios = facts[SparsityAllocation.outlierFact]!, sparsities = facts[SparsityAllocation.sparsityFact]!
        for b in fx.model.blocks.indices {
            let linears = fx.model.blocks[b].nodes(of: LinearOp.self)
            let x = try fx.captured(block: b, Set(linears.map { $0.node.inputs[0] }))
            let scores = linears.flatMap { node, op in WandaTests.referenceScores(fx.model.blocks[b].parameters[op.weight!]!, x[node.inputs[0]]!) }
            let mean = scores.reduce(0.0) { $0 + Double($1) } / Double(scores.count)
            let expected = Double(scores.filter { Double($0) > 3 * mean }.count) / Double(scores.count)
            XCTAssertEqual(ratios[b], expected, accuracy: 2.0 / Double(scores.count), "block \(b)")
        }
        XCTAssertEqual(sparsities.reduce(0, +) / 4, 0.5, accuracy: 1e-12)
        XCTAssertGreaterThan(Set(sparsities.map { ($0 * 1e6).rounded() }).count, 1, "allocations should vary by block: \(sparsities)")
        XCTAssertEqual(try makePass(WandaPass.self, [("sparsity", "0.5")]).plan(model: fx.model, context: context).count, 0, "uniform plans nothing")
    }

    func testOWLInThePipelineVariesBlockSparsityAroundTheTarget() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        let fx = PruneFixture(sizes, seed: 9, windows: 3, length: 16)
        for pass in ["wanda", "sparsegpt"] {
            var model = fx.model
            let options = [("sparsity", "0.5"), ("allocation", "owl"), ("owl_lambda", "0.1")] + (pass == "sparsegpt" ? [("block_size", "16")] : [])
            let report = try Pipeline(recipe: recipe(pass, options), registry: try BuiltinPasses.registry())
                .run(on: &model, calibration: fx.calibrationSet)
            try Verifier.verify(model)
            let targets = report.passes.map { $0.metrics["target_sparsity"]! }
            let achieved = report.passes.map { $0.metrics["sparsity"]! }
            XCTAssertEqual(targets.reduce(0, +) / 4, 0.5, accuracy: 1e-12, pass)
            XCTAssertEqual(achieved.reduce(0, +) / 4, 0.5, accuracy: 0.02, pass)
            XCTAssertGreaterThan(targets.max()! - targets.min()!, 0.1, "\(pass): \(targets)")
            for (t, a) in zip(targets, achieved) { XCTAssertEqual(t, a, accuracy: 0.03, pass) }
        }
    }

    func testEveryPassRunsThroughThePipelineWithExactPatternsAndAVerifiedModel() throws {
        let fx = WandaTests.fixtures[1]
        for pass in ["wanda", "sparsegpt", "wanda++"] {
            for pattern in ["unstructured", "2:4", "4:8"] {
                var model = fx.model
                var options = [("sparsity", "0.5"), ("pattern", pattern)]
                if pass == "wanda++" { options += [("ro_iterations", "1"), ("ro_samples", "2")] }
                if pass == "sparsegpt" { options += [("block_size", "32")] }
                let report = try Pipeline(recipe: recipe(pass, options, targets: ["blocks.*.mlp.*", "blocks.*.attn.*"]),
                                          registry: try BuiltinPasses.registry()).run(on: &model, calibration: fx.calibrationSet)
                try Verifier.verify(model)
                XCTAssertEqual(report.passes.count, model.blocks.count)
                for block in model.blocks {
                    XCTAssertEqual(block.masks.count, 7, "\(pass) \(pattern)")
                    for (name, mask) in block.masks {
                        switch pattern {
                        case "2:4": assertNOfM(mask, n: 2, m: 4, "\(pass) \(name)")
                        case "4:8": assertNOfM(mask, n: 4, m: 8, "\(pass) \(name)")
                        default: XCTAssertEqual(mask.sparsity, 0.5, accuracy: 1e-9, "\(pass) \(name)")
                        }
                    }
                }
            }
        }
    }
}
