import Foundation
import Lancet
@testable import LancetPassesPrune
@testable import LancetSurgery
import XCTest

/// Wanda++: the regional gradient score's ranking, and regional optimisation lowering the block error.
final class WandaPlusPlusTests: XCTestCase {
    /// √(mean over windows of (∂‖block(X_w)‖₂/∂W)²), one backward per window, computed here.
    static func regionalGradients(_ fx: PruneFixture, block b: Int) throws -> [String: [Double]] {
        let block = fx.model.blocks[b]
        let x = try fx.inputs(block: b)
        var sums: [String: [Double]] = [:]
        for w in 0..<fx.windows {
            let context = ExecutionContext(batch: 1, length: fx.length)
            let f = try BlockExecutor.forward(block, index: b, input: x.slicingRows((w * fx.length)..<((w + 1) * fx.length)), context: context, keepValues: true)
            let norm = f.output.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let dy = Tensor(shape: f.output.shape, f.output.scalars.map { Float(Double($0) / norm) })
            let g = try BlockExecutor.backward(block, index: b, values: f.values, outputGradient: dy, context: context)
            for (name, t) in g.parameters {
                let s = t.scalars
                if sums[name] == nil { sums[name] = [Double](repeating: 0, count: s.count) }
                for i in s.indices { sums[name]![i] += Double(s[i]) * Double(s[i]) }
            }
        }
        return sums.mapValues { $0.map { ($0 / Double(fx.windows)).squareRoot() } }
    }

    /// Block `b` of `fx` cut by `scoreOnly` and by `optimising` on the context `optimising` asks for (the latter's
    /// result verified), with each one's error against the dense block's outputs on the calibration windows.
    static func scoreOnlyAgainstOptimised(_ fx: PruneFixture, block b: Int, scoreOnly: WandaPlusPlusPass, optimising: WandaPlusPlusPass) throws
        -> (plain: Block, optimised: Block, report: PassReport, before: Double, after: Double) {
        var plain = fx.model.blocks[b], optimised = fx.model.blocks[b]
        let context = try fx.context(block: b, pass: optimising)
        _ = try scoreOnly.apply(to: &plain, context: context)
        let report = try optimising.apply(to: &optimised, context: context)
        try Verifier.verify(optimised, index: b, hiddenSize: fx.model.config.hiddenSize)
        return (plain, optimised, report, try fx.blockError(plain, index: b, context: context), try fx.blockError(optimised, index: b, context: context))
    }

    func testRegionalGradientScoreRanksByAlphaGradientPlusInputNormTimesWeight() throws {
        let fx = WandaTests.fixtures[0]
        for alpha in [0.0, 1.0, 100.0] {
            let pass = try makePass(WandaPlusPlusPass.self, [("sparsity", "0.5"), ("alpha", "\(alpha)"), ("ro_iterations", "0")])
            for b in fx.model.blocks.indices {
                var block = fx.model.blocks[b]
                _ = try pass.apply(to: &block, context: try fx.context(block: b, pass: pass))
                try Verifier.verify(block, index: b, hiddenSize: fx.model.config.hiddenSize)
                let gradients = try Self.regionalGradients(fx, block: b)
                let linears = block.nodes(of: LinearOp.self)
                let x = try fx.captured(block: b, Set(linears.map { $0.node.inputs[0] }))
                for (node, op) in linears {
                    let w = fx.model.blocks[b].parameters[op.weight!]!, (rows, cols) = (w.shape[0], w.shape[1])
                    let norms = WandaTests.norms(x[node.inputs[0]]!), g = gradients[op.weight!]!, ws = w.scalars
                    let scores = (0..<(rows * cols)).map { Float((alpha * g[$0] + Double(norms[$0 % cols])) * Double(abs(ws[$0]))) }
                    XCTAssertEqual(prunedSet(block.masks[op.weight!]!), lowestPerRow(scores, rows: rows, cols: cols, k: cols / 2),
                                   "block \(b) \(node.name) α = \(alpha)")
                }
            }
        }
    }

    func testAlphaZeroWithoutOptimisationIsWanda() throws {
        let fx = WandaTests.fixtures[1]
        let plus = try makePass(WandaPlusPlusPass.self, [("pattern", "2:4"), ("alpha", "0"), ("ro_iterations", "0")])
        let wanda = try makePass(WandaPass.self, [("pattern", "2:4")])
        for b in fx.model.blocks.indices {
            var a = fx.model.blocks[b], c = fx.model.blocks[b]
            _ = try plus.apply(to: &a, context: try fx.context(block: b, pass: plus))
            _ = try wanda.apply(to: &c, context: try fx.context(block: b, pass: wanda))
            XCTAssertEqual(a.masks, c.masks, "block \(b)")
        }
    }

    func testWandaPlusPlusRegionalOptimisationLowersBlockErrorBelowItsRGSMaskAlone() throws {
        for fx in WandaTests.fixtures {
            for (pattern, regrow) in [("unstructured", "true"), ("2:4", "true"), ("unstructured", "false")] {
                let options = [("sparsity", "0.5"), ("pattern", pattern), ("ro_samples", "\(fx.windows)"), ("ro_learning_rate", "2e-4"),
                               ("ro_regrow", regrow)]
                let rgs = try makePass(WandaPlusPlusPass.self, options + [("ro_iterations", "0")])
                let full = try makePass(WandaPlusPlusPass.self, options + [("ro_iterations", "3")])
                for b in fx.model.blocks.indices {
                    let (plain, optimised, report, before, after) = try Self.scoreOnlyAgainstOptimised(fx, block: b, scoreOnly: rgs, optimising: full)
                    XCTAssertLessThan(after, before, "block \(b) \(pattern) regrow \(regrow): RO \(after) vs RGS alone \(before)")
                    XCTAssertEqual(report.metrics["sparsity"]!, 0.5, accuracy: 1e-9)
                    for (name, mask) in optimised.masks {
                        if pattern == "2:4" { assertNOfM(mask, n: 2, m: 4, name) } else {
                            XCTAssertEqual(Set(prunedPerRow(mask)), [mask.shape[1] / 2], name)
                        }
                    }
                    if regrow == "false" {
                        XCTAssertEqual(optimised.masks, plain.masks, "fixed masks: RO must not change the RGS mask (block \(b))")
                        XCTAssertEqual(report.metrics["mask_changed_fraction"], 0)
                    }
                }
            }
        }
    }

    func testAnOvershootingLearningRateIsRetriedSmallerOrTheScoreOnlyBlockIsKept() throws {
        let fx = WandaTests.fixtures[0]
        let options = [("sparsity", "0.5"), ("ro_samples", "\(fx.windows)"), ("ro_iterations", "2"), ("ro_learning_rate", "1.0")]
        let rgs = try makePass(WandaPlusPlusPass.self, options + [("ro_iterations", "0")])
        let noRetry = try makePass(WandaPlusPlusPass.self, options + [("ro_retries", "0")])
        let retries = try makePass(WandaPlusPlusPass.self, options + [("ro_retries", "5")])
        for b in fx.model.blocks.indices {
            let context = try fx.context(block: b, pass: retries)
            var plain = fx.model.blocks[b], reverted = fx.model.blocks[b], retried = fx.model.blocks[b]
            _ = try rgs.apply(to: &plain, context: context)
            // A rate of 1.0 on weights of size ~0.1 wrecks the block: without retries the score-only block is kept as is.
            let r0 = try noRetry.apply(to: &reverted, context: context)
            XCTAssertEqual(r0.metrics["ro_reverted"], 1, "block \(b)")
            XCTAssertEqual(reverted.masks, plain.masks, "block \(b)")
            XCTAssertEqual(reverted.parameters, plain.parameters, "block \(b)")
            // With retries a smaller rate is found that does not make the held-window error worse.
            let r5 = try retries.apply(to: &retried, context: context)
            let used = try XCTUnwrap(r5.metrics["ro_learning_rate_used"], "block \(b): no rate helped")
            XCTAssertLessThan(used, 1.0, "block \(b)")
            XCTAssertNil(r5.metrics["ro_reverted"])
            let attempt = Int(log10(1.0 / used).rounded())           // the accepted retry: rate 1.0 / 10^attempt
            XCTAssertLessThanOrEqual(try XCTUnwrap(r5.metrics["ro_retry\(attempt)_check_error"]), r5.metrics["score_only_check_error"]!, "block \(b)")
            XCTAssertEqual(r5.metrics["sparsity"]!, 0.5, accuracy: 1e-9)
        }
    }

    func testWandaPlusPlusRunsInThePipelineAndIsDeterministic() throws {
        let fx = WandaTests.fixtures[0]
        let r = recipe("wanda++", [("sparsity", "0.5"), ("ro_iterations", "2"), ("ro_samples", "2"), ("ro_learning_rate", "1e-4")])
        var a = fx.model, b = fx.model
        let registry = try BuiltinPasses.registry()
        _ = try Pipeline(recipe: r, registry: registry).run(on: &a, calibration: fx.calibrationSet)
        _ = try Pipeline(recipe: r, registry: registry).run(on: &b, calibration: fx.calibrationSet)
        try Verifier.verify(a)
        for (x, y) in zip(a.blocks, b.blocks) {
            XCTAssertEqual(x.masks, y.masks)
            XCTAssertEqual(x.parameters, y.parameters)
        }
    }

    func testRegionalGradientOverSampledWindowsIsTheMeanOverExactlyThoseWindows() throws {
        let fx = PruneFixture(windows: 6)
        let x = try fx.inputs(block: 1)
        let sampled = RegionalGradient(samples: 3, seed: 11)
        let chosen = sampled.windows(of: fx.windows)
        XCTAssertEqual(chosen.count, 3)
        XCTAssertEqual(Set(chosen).count, 3)
        XCTAssertEqual(chosen, chosen.sorted())
        XCTAssertEqual(RegionalGradient(samples: 3, seed: 11).windows(of: fx.windows), chosen, "same seed, same windows")
        XCTAssertEqual(RegionalGradient(samples: 9, seed: 11).windows(of: fx.windows), Array(0..<6), "more samples than windows: every window")
        XCTAssertNotEqual(sampled.id, RegionalGradient().id)
        let block = fx.model.blocks[1]
        let a = try sampled.compute(block: block, index: 1, inputs: x, length: fx.length)
        let b = try RegionalGradient().compute(block: block, index: 1, inputs: x.gatherWindows(chosen, length: fx.length), length: fx.length)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.sums.keys.sorted(), b.sums.keys.sorted())
        for (name, t) in a.sums { XCTAssertEqual(t, b.sums[name], name) }
    }

    func testWindowPrefixesAreExactForACausalBlock() throws {
        let fx = PruneFixture(windows: 3)
        let context = try fx.context(block: 1, pass: try makePass(WandaPass.self, [("sparsity", "0.5")]))
        let cut = context.calibration.prefixes(tokens: 5)
        XCTAssertEqual(cut.length, 5)
        XCTAssertEqual(cut.windows, 3)
        XCTAssertEqual(cut.inputs.shape, [15, fx.model.config.hiddenSize])
        // The dense block on the prefixes alone reproduces the first rows of its outputs on the whole windows.
        let output = try BlockSweep(windowsPerCall: 2, length: 5).run(fx.model.blocks[1], index: 1, inputs: cut.inputs)
        XCTAssertLessThan(output.relativeError(to: cut.teacher), 1e-10)
        XCTAssertEqual(cut.teacher.slicingRows(5..<10), context.calibration.teacher.slicingRows(16..<21))
        XCTAssertEqual(context.calibration.prefixes(tokens: 16).inputs, context.calibration.inputs, "a whole window is the set itself")
    }

    func testSampledRegionalOptimisationStillLowersTheErrorAndKeepsThePattern() throws {
        let fx = PruneFixture(windows: 6)
        let options = [("sparsity", "0.5"), ("ro_samples", "4"), ("ro_learning_rate", "2e-4"), ("rg_samples", "3"), ("sample_tokens", "8")]
        let rgs = try makePass(WandaPlusPlusPass.self, options + [("ro_iterations", "0")])
        let sampled = try makePass(WandaPlusPlusPass.self, options + [("ro_iterations", "3")])
        for b in fx.model.blocks.indices {
            let (_, optimised, report, before, after) = try Self.scoreOnlyAgainstOptimised(fx, block: b, scoreOnly: rgs, optimising: sampled)
            XCTAssertLessThan(after, before, "block \(b): RO on 8-token prefixes \(after) vs RGS alone \(before) (on whole windows)")
            XCTAssertEqual(report.metrics["sparsity"]!, 0.5, accuracy: 1e-9)
            for (name, mask) in optimised.masks { XCTAssertEqual(Set(prunedPerRow(mask)), [mask.shape[1] / 2], name) }
        }
        XCTAssertThrowsError(try makePass(WandaPlusPlusPass.self, [("rg_samples", "-1")]))
        XCTAssertThrowsError(try makePass(WandaPlusPlusPass.self, [("sample_tokens", "-2")]))
    }
}
