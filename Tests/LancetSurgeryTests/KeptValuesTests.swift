import Lancet
@testable import LancetRuntime
@testable import LancetSurgery
import XCTest

/// Values kept from one sweep stand in for running the nodes again: a block run resumed from given values
/// computes what the full run computes, kept values replay each call's values, and a least-squares fit that
/// reads the dense block's kept values and resumes its rounds from the cut block's fits the same weights, bit
/// for bit, as one that runs both blocks from their inputs every round (and the same up to rounding when it forms
/// mlp.down's right-hand side from the dense outputs); the values its last round keeps give the
/// fitted block's outputs, bit for bit, without running the block again.
final class KeptValuesTests: XCTestCase {
    let length = 16

    /// A tiny model's first block, 7 windows of inputs (3 per call), and a cut copy of the block (every other
    /// weight of each matrix zeroed).
    func fixture() throws -> (dense: Block, cut: Block, inputs: Tensor, sweep: BlockSweep) {
        let model = TinyLlama.make(seed: 11)
        var g = SeededGenerator(seed: 5)
        let tokens = (0..<(7 * length)).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) }
        let inputs = try ModelRunner(model: model).embed(tokens)
        var cut = model.blocks[0]
        for name in cut.parameters.keys where name.hasSuffix(".weight") && cut.parameters[name]!.rank == 2 {
            cut.parameters[name]!.withUnsafeMutableBufferPointer { p in for i in stride(from: 0, to: p.count, by: 2) { p[i] = 0 } }
        }
        return (model.blocks[0], cut, inputs, BlockSweep(windowsPerCall: 3, length: length))
    }

    func testARunResumedFromGivenValuesComputesTheFullRunsValues() throws {
        let f = try fixture()
        let context = ExecutionContext(batch: 7, length: length)
        let full = try BlockExecutor.forward(f.cut, input: f.inputs, context: context, capture: ["attn", "act"])
        let resumed = try BlockExecutor.forward(f.cut, input: f.inputs, context: ExecutionContext(batch: 7, length: length),
                                                capture: ["act"], given: ["attn": full.values["attn"]!])
        XCTAssertEqual(resumed.output, full.output)
        XCTAssertEqual(resumed.values["act"], full.values["act"])
        // The given value is used, not recomputed: a different one changes what depends on it.
        var other = full.values["attn"]!
        other.add(full.values["attn"]!)                           // twice the value
        let changed = try BlockExecutor.forward(f.cut, input: f.inputs, context: ExecutionContext(batch: 7, length: length),
                                                capture: ["act"], computeOutput: false, given: ["attn": other])
        XCTAssertNotEqual(changed.values["act"], full.values["act"])
        XCTAssertEqual(changed.values["act"]?.shape, full.values["act"]?.shape)
    }

    func testKeptValuesReplayEachCallsValuesWithinTheirBudget() throws {
        let f = try fixture()
        let kept = KeptValues(windows: 7, length: length)
        var calls: [(Range<Int>, Tensor)] = []
        _ = try f.sweep.run(f.dense, index: 0, inputs: f.inputs, capture: ["act", "attn"]) { range, values in
            kept.store(values, names: ["act", "attn"], windows: range)
            calls.append((range, values["act"]!))
        }
        XCTAssertEqual(calls.count, 3)
        for (range, act) in calls { XCTAssertEqual(kept.values(["act"], windows: range)?["act"], act) }
        XCTAssertNil(kept.values(["act", "h"], windows: 0..<3), "a name not kept")
        // A budget below one value's bytes keeps nothing, and the readers compute the values themselves.
        let small = KeptValues(windows: 7, length: length, budget: 7 * length * 4)
        _ = try f.sweep.run(f.dense, index: 0, inputs: f.inputs, capture: ["act"]) { range, values in
            small.store(values, names: ["act"], windows: range)
        }
        XCTAssertNil(small.values(["act"], windows: 0..<3))
        XCTAssertEqual(small.byteCount, 0)
    }

    func testLeastSquaresFromKeptValuesFitsTheSameWeightsAsFromFullRuns() throws {
        let f = try fixture()
        let grams = LeastSquaresFit.targets(cut: f.cut, dense: f.dense).map { InputGram(value: $0.input) }
        XCTAssertEqual(LeastSquaresFit.rounds(LeastSquaresFit.targets(cut: f.cut, dense: f.dense), in: f.cut).count, 4)
        let kept = KeptValues(windows: 7, length: length)
        let (teacher, statistics) = try StatisticsCollector(sweep: f.sweep).collect(f.dense, index: 0, inputs: f.inputs, analyses: grams,
                                                                                   keep: Set(grams.map(\.value)), keeping: kept)
        XCTAssertEqual(kept.names, ["attn_in", "attn", "mlp_in", "act"])
        let activations = CalibrationActivations(inputs: f.inputs, teacher: teacher, windows: 7, length: length)
        func fitted(kept: KeptValues?, resume: Bool) throws -> Block {
            var fit = BlockLeastSquares(original: f.dense, index: 0, activations: activations, denseInputs: nil, sweep: f.sweep,
                                        spec: FitSpec(method: .lstsq), denseValues: kept)
            fit.resumesRounds = resume
            var block = f.cut
            _ = try fit.fit(&block, statistics: statistics)
            return block
        }
        let plain = try fitted(kept: nil, resume: false)
        XCTAssertNotEqual(plain.parameters["mlp.down.weight"], f.cut.parameters["mlp.down.weight"])
        for (kept, resume) in [(kept, false), (nil, true), (kept, true)] {
            let block = try fitted(kept: kept, resume: resume)
            for name in plain.parameters.keys { XCTAssertEqual(block.parameters[name], plain.parameters[name], name) }
        }
    }

    func testLeastSquaresFromTheKeptDenseOutputsFitsTheSameWeightsWithoutTheCrossGram() throws {
        let f = try fixture()
        let targets = LeastSquaresFit.targets(cut: f.cut, dense: f.dense)
        // mlp.down writes fewer outputs than it reads inputs; q, k and v together write more than they read.
        XCTAssertEqual(LeastSquaresFit.denseOutputProducts(of: targets.map(\.node), in: f.dense), ["act": ["mlp_out"]])
        let grams = targets.map { InputGram(value: $0.input) }
        let kept = KeptValues(windows: 7, length: length)
        let (teacher, statistics) = try StatisticsCollector(sweep: f.sweep).collect(f.dense, index: 0, inputs: f.inputs, analyses: grams,
                                                                                   keep: Set(grams.map(\.value) + ["mlp_out"]), keeping: kept)
        XCTAssertEqual(kept.names, ["attn_in", "attn", "mlp_in", "act", "mlp_out"])
        let activations = CalibrationActivations(inputs: f.inputs, teacher: teacher, windows: 7, length: length)
        func fitted(kept: KeptValues?, statistics: BlockStatistics) throws -> (block: Block, outcome: Pipeline.FitOutcome) {
            var fit = BlockLeastSquares(original: f.dense, index: 0, activations: activations, denseInputs: nil, sweep: f.sweep,
                                        spec: FitSpec(method: .lstsq), denseValues: kept)
            var block = f.cut
            let outcome = try fit.fit(&block, statistics: statistics)
            return (block, outcome)
        }
        let plain = try fitted(kept: nil, statistics: statistics)
        // Without the dense Gram of down's input only the kept outputs can give down's right-hand side.
        let withoutAct = BlockStatistics(tokens: statistics.tokens)
        for g in Set(grams.map(\.value)).subtracting(["act"]).map({ InputGram(value: $0) }) { withoutAct.store(TensorSum(try statistics.gram(of: g.value)), for: g, on: f.dense) }
        XCTAssertThrowsError(try fitted(kept: nil, statistics: withoutAct))
        let fromOutputs = try fitted(kept: kept, statistics: withoutAct)
        for name in plain.block.parameters.keys.sorted() {
            let a = plain.block.parameters[name]!, b = fromOutputs.block.parameters[name]!
            XCTAssertLessThanOrEqual(relativeDifference(b, a), 1e-4, name)
        }
        XCTAssertNotEqual(plain.block.parameters["mlp.down.weight"], f.cut.parameters["mlp.down.weight"])
        XCTAssertEqual(fromOutputs.outcome.objectiveBefore!, plain.outcome.objectiveBefore!, accuracy: 1e-5 * plain.outcome.objectiveBefore!)
        XCTAssertEqual(fromOutputs.outcome.objectiveAfter!, plain.outcome.objectiveAfter!, accuracy: 1e-5 * plain.outcome.objectiveBefore!)
    }

    /// ‖a − b‖ / ‖b‖.
    func relativeDifference(_ a: Tensor, _ b: Tensor) -> Double {
        var d = a
        d.add(b, scale: -1)
        let num = d.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
        let den = b.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
        return (num / max(den, 1e-30)).squareRoot()
    }

    func testTheResumePointAfterAChangeIsWhatTheChangedNodesDownstreamRead() throws {
        let block = TinyLlama.make(seed: 11).blocks[0]
        XCTAssertEqual(BlockExecutor.resumePoint(afterChanging: ["mlp.down"], in: block), ["act", "h"])
        XCTAssertEqual(BlockExecutor.resumePoint(afterChanging: ["mlp.gate", "mlp.up"], in: block), ["mlp_in", "h"])
        XCTAssertEqual(BlockExecutor.resumePoint(afterChanging: ["attn.o"], in: block), ["attn"],
                       "the block's input, which the residual adds, is never kept")
        XCTAssertEqual(BlockExecutor.resumePoint(afterChanging: [], in: block), [block.output])
    }

    func testTheFitsKeptValuesGiveTheFittedBlocksOutputsBitForBit() throws {
        let f = try fixture()
        let grams = LeastSquaresFit.targets(cut: f.cut, dense: f.dense).map { InputGram(value: $0.input) }
        let (teacher, statistics) = try StatisticsCollector(sweep: f.sweep).collect(f.dense, index: 0, inputs: f.inputs, analyses: grams)
        let activations = CalibrationActivations(inputs: f.inputs, teacher: teacher, windows: 7, length: length)
        var fit = BlockLeastSquares(original: f.dense, index: 0, activations: activations, denseInputs: nil, sweep: f.sweep,
                                    spec: FitSpec(method: .lstsq))
        var block = f.cut
        let outcome = try fit.fit(&block, statistics: statistics)
        let resume = try XCTUnwrap(outcome.outputResume)
        XCTAssertEqual(resume.names, ["act", "h"])
        var full = f.inputs, resumed = f.inputs
        let fullError = try f.sweep.advance(block, index: 0, inputs: &full, teacher: teacher)
        let resumedError = try f.sweep.advance(block, index: 0, inputs: &resumed, teacher: teacher,
                                               given: { resume.values(resume.names, windows: $0) ?? [:] })
        XCTAssertEqual(resumed, full)
        XCTAssertEqual(resumedError, fullError)
        XCTAssertNotEqual(full, try f.sweep.run(f.cut, index: 0, inputs: f.inputs), "the fit changed the outputs")
        // Kept values are read, not recomputed: a block whose upstream weights differ still resumes from them.
        var other = block
        other.parameters["mlp.up.weight"]!.add(block.parameters["mlp.up.weight"]!)
        var fromKept = f.inputs
        _ = try f.sweep.advance(other, index: 0, inputs: &fromKept, teacher: teacher, given: { resume.values(resume.names, windows: $0) ?? [:] })
        XCTAssertEqual(fromKept, full)
        // Without the option nothing is kept.
        var plain = BlockLeastSquares(original: f.dense, index: 0, activations: activations, denseInputs: nil, sweep: f.sweep,
                                      spec: FitSpec(method: .lstsq))
        plain.keepsResumePoint = false
        var again = f.cut
        XCTAssertNil(try plain.fit(&again, statistics: statistics).outputResume)
        XCTAssertEqual(again.parameters, block.parameters)
    }
}
