import Foundation
import Lancet
@testable import LancetPassesDynamic
import XCTest

/// Input-dependent FFN pruning: the op computes what its definition says (the full FFN on the prompt, the chosen
/// channels after it), the prefill's choice is the one every decode step runs, keeping every channel is the dense
/// model, the predictors' fits lower their losses, and a converted model survives the archive.
final class DynamicFFNTests: XCTestCase {
    static let sizes: TinyLlama.Sizes = {
        var s = TinyLlama.Sizes()
        (s.hidden, s.blocks, s.heads, s.kvHeads, s.ffn, s.vocabulary) = (64, 2, 4, 2, 192, 256)
        return s
    }()
    static let dense = TinyLlama.make(sizes, seed: 41)

    static func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32(g.nextIndex(below: sizes.vocabulary)) }
    }

    /// The dense model converted by `dynamic-ffn` with `options` (calibration: 6 windows of 48 tokens).
    static func converted(_ options: [(String, String)], fit: FitSpec = FitSpec()) throws -> (Model, [PassReport]) {
        var model = dense
        let values = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
        let recipe = Recipe(stages: [Stage(name: "dynamic", passes: [PassInvocation(name: "dynamic-ffn", options: values, fit: fit)])])
        let windows = (0..<6).map { tokens(48, seed: 100 + UInt64($0)) }
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: CalibrationSet(windows: windows, seed: 9))
        try Verifier.verify(model)
        return (model, report.passes)
    }

    func testKeepingEveryChannelIsTheDenseModel() throws {
        let (model, _) = try Self.converted([("keep", "1.0"), ("prompt_tokens", "8"), ("predictor", "linear")])
        XCTAssertEqual(model.blocks[0].node(DynamicFFNPass.node)?.kind, "dynamic-ffn")
        let tokens = Self.tokens(24, seed: 7)
        let context = { ExecutionContext(batch: 1, length: tokens.count) }
        XCTAssertEqual(try ModelRunner(model: model).logits(tokens, context: context()),
                       try ModelRunner(model: Self.dense).logits(tokens, context: context()))
    }

    /// The op on two sequences: the prompt rows get the full FFN, the rows after it the FFN restricted to the channels
    /// recorded for that sequence, computed here from the dense weights with the other channels' gate rows removed.
    func testTheOpIsTheMaskedDenseFFNOnTheChosenChannels() throws {
        let (model, _) = try Self.converted([("keep", "0.25"), ("prompt_tokens", "5"), ("predictor", "prompt")])
        let block = model.blocks[1]
        let node = try XCTUnwrap(block.node(DynamicFFNPass.node))
        let op = try XCTUnwrap(node.op as? DynamicFFNOp)
        XCTAssertEqual(op.keep, 48)
        var g = SeededGenerator(seed: 3)
        let (length, hidden) = (12, Self.sizes.hidden)
        let x = Tensor.randomNormal(shape: [2 * length, hidden], generator: &g)
        let context = ExecutionContext(batch: 2, length: length)
        context.nodeName = node.name
        let y = try op.forward([x], parameters: block, context: context)[0]
        let chosen = try XCTUnwrap(context.routing[node.name]).map(Int.init)
        XCTAssertEqual(chosen.count, 2 * op.keep)
        let names = op.ffnNames
        for b in 0..<2 {
            let channels = Array(chosen[(b * op.keep)..<((b + 1) * op.keep)])
            XCTAssertEqual(channels, channels.sorted())
            for r in 0..<length {
                let row = x.slicingRows((b * length + r)..<(b * length + r + 1))
                let kept = r < op.promptTokens ? Array(0..<192) : channels
                let gate = BlockSlicing.gather(block.parameters[names.gate]!, rows: kept)
                let up = BlockSlicing.gather(block.parameters[names.up]!, rows: kept)
                let down = BlockSlicing.gather(block.parameters[names.down]!, columns: kept)
                let a = zip(matmul(row, gate, transposeB: true).scalars, matmul(row, up, transposeB: true).scalars).map { g, u in g / (1 + exp(-g)) * u }
                let want = matmul(Tensor(shape: [1, kept.count], a), down, transposeB: true).scalars
                let got = y.slicingRows((b * length + r)..<(b * length + r + 1)).scalars
                let scale = want.map { abs($0) }.max()!
                for (p, q) in zip(got, want) { XCTAssertEqual(p, q, accuracy: 1e-5 * scale, "sequence \(b) row \(r)") }
            }
        }
        // The two sequences are different inputs: they choose different channels.
        XCTAssertNotEqual(Array(chosen[0..<op.keep]), Array(chosen[op.keep...]))
    }

    /// Prefill of the prompt through a KV cache, then one token per step: every step runs the channels the prefill
    /// chose (recorded per node), and its logits equal those of the whole sequence run at once with the same prompt.
    func testThePrefillsChoiceIsTheOneEveryDecodeStepRuns() throws {
        try prefillChoiceRunsAtEveryDecodeStep(impute: false)
        try prefillChoiceRunsAtEveryDecodeStep(impute: true)
    }

    func prefillChoiceRunsAtEveryDecodeStep(impute: Bool) throws {
        let promptLength = 10
        let (model, _) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "\(promptLength)"), ("predictor", "linear"), ("impute", "\(impute)")])
        let tokens = Self.tokens(30, seed: 11)
        let runner = ModelRunner(model: model)
        let whole = try runner.logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count))
        let cache = KVCache(capacity: tokens.count)
        let prefill = ExecutionContext(batch: 1, length: promptLength, cache: cache)
        _ = try runner.logits(Array(tokens[..<promptLength]), context: prefill)
        let chosen = try XCTUnwrap(prefill.routing[DynamicFFNPass.node])
        XCTAssertEqual(chosen.count, 96)
        for p in promptLength..<tokens.count {
            let step = ExecutionContext(batch: 1, length: 1, startPosition: p, cache: cache)
            let logits = try runner.logits([tokens[p]], context: step).scalars
            XCTAssertEqual(step.routing[DynamicFFNPass.node], chosen, "position \(p)")
            let want = whole.slicingRows(p..<(p + 1)).scalars
            let scale = Double(want.map { abs($0) }.max()!)
            let error = zip(logits, want).map { abs(Double($0) - Double($1)) }.max()! / scale
            XCTAssertLessThanOrEqual(error, 1e-4, "position \(p), impute \(impute)")
        }
        // Decoding without a prefill's choice is refused with the node named, not run with a guess.
        let fresh = KVCache(capacity: 4)
        _ = try runner.logits([tokens[0]], context: ExecutionContext(batch: 1, length: 1, cache: fresh))
        fresh.state.reset()
        XCTAssertThrowsError(try runner.logits([tokens[1]], context: ExecutionContext(batch: 1, length: 1, startPosition: 1, cache: fresh))) {
            XCTAssertTrue("\($0)".contains("without the prompt's channel choice"), "\($0)")
        }
    }

    /// With a fit the tokens after the prompt read a down projection of their own: the readout features times it plus
    /// the offset (the prompt rows' dense output) are the op's output, the lstsq fit lowers the block's error, and decoding
    /// still equals the whole-sequence run.
    func testTheFitRefitsTheAfterPromptDownProjection() throws {
        try fitRefitsTheAfterPromptDownProjection(repair: nil)
        try fitRefitsTheAfterPromptDownProjection(repair: "0.3")
    }

    /// The same with each prompt refitting its kept channels' down columns (`repair`): the fit sets their prior.
    func fitRefitsTheAfterPromptDownProjection(repair: String?) throws {
        let (model, reports) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "8"), ("predictor", "linear"), ("sink_tokens", "1")]
                                                  + (repair.map { [("repair", $0)] } ?? []),
                                                  fit: FitSpec(method: .lstsq, damping: 0.01))
        let block = model.blocks[0]
        let op = try XCTUnwrap(block.node(DynamicFFNPass.node)?.op as? DynamicFFNOp)
        XCTAssertTrue(op.afterDown)
        XCTAssertNotEqual(block.parameters[op.afterDownName], block.parameters[op.ffnNames.down])
        for r in reports { XCTAssertLessThan(try XCTUnwrap(r.errorAfterFit), try XCTUnwrap(r.errorAfterCut), "block \(r.block ?? -1)") }
        var g = SeededGenerator(seed: 5)
        let x = Tensor.randomNormal(shape: [2 * 20, Self.sizes.hidden], generator: &g)
        let context = ExecutionContext(batch: 2, length: 20)
        let y = try op.forward([x], parameters: block, context: context)[0]
        let layout = ExecutionContext(batch: 2, length: 20)
        XCTAssertEqual(op.readoutParameters, [op.afterDownName])
        let readout = try op.readout(x, parameters: block, context: layout)
        var want = matmul(readout.features, block.parameters[op.afterDownName]!, transposeB: true)
        want.add(try XCTUnwrap(readout.offset))
        let scale = want.scalars.map { abs($0) }.max()!
        for (p, q) in zip(y.scalars, want.scalars) { XCTAssertEqual(p, q, accuracy: 1e-5 * scale) }
        let tokens = Self.tokens(16, seed: 2)
        let whole = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: 16))
        let cache = KVCache(capacity: 16)
        _ = try ModelRunner(model: model).logits(Array(tokens[..<8]), context: ExecutionContext(batch: 1, length: 8, cache: cache))
        for p in 8..<16 {
            let step = try ModelRunner(model: model).nextTokenLogits([tokens[p]], startPosition: p, cache: cache)
            let want = whole.slicingRows(p..<(p + 1)).scalars
            let scale = Double(want.map { abs($0) }.max()!)
            XCTAssertLessThanOrEqual(zip(step, want).map { abs(Double($0) - Double($1)) }.max()! / scale, 1e-4, "position \(p)")
        }
    }

    func testDifferentPromptsChooseDifferentChannelsAndTheOracleCannotGenerate() throws {
        let (model, _) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "8"), ("predictor", "oracle")])
        let runner = ModelRunner(model: model)
        XCTAssertThrowsError(try runner.nextTokenLogits(Self.tokens(8, seed: 1), cache: KVCache(capacity: 16))) {
            XCTAssertTrue("\($0)".contains("oracle predictor"), "\($0)")
        }
        let a = ExecutionContext(batch: 1, length: 16), b = ExecutionContext(batch: 1, length: 16)
        _ = try runner.hiddenStates(Self.tokens(16, seed: 1), context: a)
        _ = try runner.hiddenStates(Self.tokens(16, seed: 2), context: b)
        let overlap = ChannelContribution.jaccard(a.routing[DynamicFFNPass.node]!.map(Int.init), b.routing[DynamicFFNPass.node]!.map(Int.init))
        XCTAssertLessThan(overlap, 1)
        XCTAssertGreaterThan(overlap, 0)
    }

    /// `ChannelOverlap` (what `lancet masks` prints): each prompt's choice per block, a prompt overlaps itself fully, and
    /// the mean over pairs and blocks is the mean of the per-block Jaccard indices.
    func testChannelOverlapAveragesJaccardOverPairsAndBlocks() throws {
        let (model, _) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "12"), ("predictor", "linear")])
        let prompts = (0..<3).map { Self.tokens(12, seed: 50 + UInt64($0)) }
        let choices = try ChannelOverlap.choices(model, prompts: prompts)
        XCTAssertEqual(choices.count, 3)
        XCTAssertEqual(Set(choices[0].keys), ["0/mlp.dynamic", "1/mlp.dynamic"])
        XCTAssertEqual(ChannelOverlap.meanJaccard([choices[0]], [choices[0]]), 1)
        let pair = { (a: Int, b: Int) in ["0/mlp.dynamic", "1/mlp.dynamic"].reduce(0.0) { $0 + ChannelContribution.jaccard(choices[a][$1]!, choices[b][$1]!) } / 2 }
        XCTAssertEqual(try XCTUnwrap(ChannelOverlap.meanJaccard(choices)), (pair(0, 1) + pair(0, 2) + pair(1, 2)) / 3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(ChannelOverlap.meanJaccard([choices[0]], [choices[1], choices[2]])), (pair(0, 1) + pair(0, 2)) / 2, accuracy: 1e-12)
        XCTAssertNil(ChannelOverlap.meanJaccard([choices[0]]))
    }

    func testThePredictorsFitsLowerTheirTrainingLoss() throws {
        for predictor in ["linear", "mlp"] {
            let (_, reports) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "16"), ("predictor", predictor), ("hidden", "8"), ("steps", "200")])
            XCTAssertEqual(reports.count, 2)
            for r in reports {
                let before = try XCTUnwrap(r.metrics["predictor_loss_before"]), after = try XCTUnwrap(r.metrics["predictor_loss_after"])
                XCTAssertLessThan(after, before, "\(predictor) block \(r.block ?? -1)")
                XCTAssertEqual(r.metrics["predictor_prompts"], 6)
            }
        }
    }

    /// A planted relation: targets = 3·feature + a per-channel offset, plus noise; the linear fit recovers the slopes,
    /// and the mlp fit ranks the channels by their targets better than its initialisation did.
    func testTheLinearFitRecoversAPlantedRelation() {
        var g = SeededGenerator(seed: 8)
        var fit = ChannelPredictorFit()
        let offsets = (0..<20).map { _ in g.nextDouble() }
        for _ in 0..<40 {
            let f = (0..<20).map { _ in g.nextDouble() }
            fit.add(features: f, targets: f.indices.map { 3 * f[$0] + offsets[$0] + 0.01 * (g.nextDouble() - 0.5) })
        }
        let outcome = fit.fit(.linear, prefix: "p", ridge: 0)
        let w = outcome.parameters["p.predictor.weight"]!.scalars
        for c in 0..<20 {
            XCTAssertEqual(Double(w[2 * c]), 3, accuracy: 0.05)
            XCTAssertEqual(Double(w[2 * c + 1]), offsets[c], accuracy: 0.05)
        }
        XCTAssertLessThan(outcome.lossAfter, 1e-4)
        let mlp = fit.fit(.mlp(hidden: 6), prefix: "p", steps: 300, seed: 1)
        XCTAssertLessThan(mlp.lossAfter, mlp.lossBefore)
    }

    func testAConvertedModelSurvivesBothArchivesAndLlamaFamilyExportsAreRefused() throws {
        let (model, _) = try Self.converted([("keep", "0.5"), ("prompt_tokens", "8"), ("predictor", "mlp"), ("hidden", "4"), ("steps", "20")])
        let tokens = Self.tokens(20, seed: 4)
        let expected = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: 20))
        for suffix in [".lancet", ".safetensors"] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("dynamic-ffn-\(getpid())" + suffix).path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try model.save(to: path)
            let back = try ModelLoader.load(path)
            try Verifier.verify(back)
            XCTAssertEqual(try ModelRunner(model: back).logits(tokens, context: ExecutionContext(batch: 1, length: 20)), expected, suffix)
        }
        let gguf = FileManager.default.temporaryDirectory.appendingPathComponent("dynamic-ffn-\(getpid()).gguf").path
        XCTAssertThrowsError(try GGUFExporter.write(model, to: gguf)) { XCTAssertTrue("\($0)".contains("'dynamic-ffn' op"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: gguf))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dynamic-ffn-hf-\(getpid())").path
        XCTAssertThrowsError(try HuggingFaceExporter.write(model, to: folder)) { XCTAssertTrue("\($0)".contains("'dynamic-ffn' op"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder))
    }

    /// Imputing a dropped channel's prompt mean: after the prompt, the op's output is the FFN with the dropped channels'
    /// activations replaced by their means over the prompt.
    func testImputedChannelsReadTheirPromptMeans() throws {
        let (model, _) = try Self.converted([("keep", "0.25"), ("prompt_tokens", "6"), ("predictor", "prompt"), ("impute", "true")])
        let block = model.blocks[0]
        let node = try XCTUnwrap(block.node(DynamicFFNPass.node))
        let op = try XCTUnwrap(node.op as? DynamicFFNOp)
        XCTAssertTrue(op.impute)
        var g = SeededGenerator(seed: 12)
        let x = Tensor.randomNormal(shape: [14, Self.sizes.hidden], generator: &g)
        let context = ExecutionContext(batch: 1, length: 14)
        context.nodeName = node.name
        let y = try op.forward([x], parameters: block, context: context)[0]
        let kept = Set(try XCTUnwrap(context.routing[node.name]).map(Int.init))
        let a = try op.activations(x, parameters: block).gated.scalars
        let means = (0..<192).map { c in (0..<6).reduce(Float(0)) { $0 + a[$1 * 192 + c] } / 6 }
        let down = block.parameters[op.ffnNames.down]!
        for r in 6..<14 {
            let filled = (0..<192).map { kept.contains($0) ? a[r * 192 + $0] : means[$0] }
            let want = matmul(Tensor(shape: [1, 192], filled), down, transposeB: true).scalars
            let scale = want.map { abs($0) }.max()!
            for (p, q) in zip(y.slicingRows(r..<(r + 1)).scalars, want) { XCTAssertEqual(p, q, accuracy: 1e-5 * scale, "row \(r)") }
        }
    }

    /// `sink_tokens` leaves the first prompt rows out of the choice: an outsized first row decides nothing.
    func testSinkTokensAreLeftOutOfTheChoice() throws {
        let (model, _) = try Self.converted([("keep", "0.25"), ("prompt_tokens", "8"), ("predictor", "prompt"), ("sink_tokens", "1")])
        let block = model.blocks[0]
        let node = try XCTUnwrap(block.node(DynamicFFNPass.node))
        let op = try XCTUnwrap(node.op as? DynamicFFNOp)
        XCTAssertEqual(op.sinkTokens, 1)
        var g = SeededGenerator(seed: 21)
        var x = Tensor.randomNormal(shape: [12, Self.sizes.hidden], generator: &g)
        x.withUnsafeMutableBufferPointer { p in for c in 0..<Self.sizes.hidden { p[c] *= 50 } }
        func chosen(_ op: DynamicFFNOp) throws -> [Int] {
            let context = ExecutionContext(batch: 1, length: 12)
            context.nodeName = node.name
            _ = try op.forward([x], parameters: block, context: context)
            return try XCTUnwrap(context.routing[node.name]).map(Int.init)
        }
        let a = try op.activations(x, parameters: block).gated
        let norms = ChannelContribution.columnNorms(block.parameters[op.ffnNames.down]!)
        XCTAssertEqual(try chosen(op), ChannelContribution.top(ChannelContribution.rms(a, rows: 1..<8, columnNorms: norms), keep: op.keep))
        var withSink = op
        withSink.sinkTokens = 0
        XCTAssertEqual(try chosen(withSink), ChannelContribution.top(ChannelContribution.rms(a, rows: 0..<8, columnNorms: norms), keep: op.keep))
        XCTAssertNotEqual(try chosen(op), try chosen(withSink))
    }

    /// `allocation: error` spreads the same total over the blocks in steps of 32 channels, each block keeping at least
    /// half the uniform share.
    func testTheErrorAllocationKeepsTheTotal() throws {
        var sizes = Self.sizes
        sizes.blocks = 4
        var model = TinyLlama.make(sizes, seed: 43)
        let values = OptionValue.object([("keep", "0.5"), ("prompt_tokens", "16"), ("predictor", "linear"), ("allocation", "error")].map {
            (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil)
        })
        let recipe = Recipe(stages: [Stage(name: "dynamic", passes: [PassInvocation(name: "dynamic-ffn", options: values)])])
        let windows = (0..<6).map { Self.tokens(48, seed: 200 + UInt64($0)) }
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: CalibrationSet(windows: windows, seed: 9))
        let keeps = report.passes.compactMap { $0.metrics["keep"] }
        XCTAssertEqual(keeps.count, 4)
        XCTAssertEqual(keeps.reduce(0, +), 4 * 96)
        for k in keeps {
            XCTAssertEqual(k.truncatingRemainder(dividingBy: 32), 0)
            XCTAssertGreaterThanOrEqual(k, 32)
        }
        try Verifier.verify(model)
    }

    func testBadOptionsAreRefusedByName() throws {
        for (options, key) in [([("keep", "0")], "keep"), ([("keep", "1.5")], "keep"), ([("predictor", "psychic")], "predictor"),
                               ([("prompt_tokens", "0")], "prompt_tokens"), ([("prompt_tokens", "48")], "prompt_tokens"), ([("hidden", "0")], "hidden"), ([("allocation", "greedy")], "allocation"), ([("sink_tokens", "8"), ("prompt_tokens", "8")], "sink_tokens")] {
            XCTAssertThrowsError(try Self.converted(options)) { XCTAssertTrue("\($0)".contains(key), "\(options): \($0)") }
        }
    }

    func testTheRecipeScoresFromTheGivenPosition() throws {
        let recipe = try RecipeParser.parse("""
            lancet: 1
            stages: [{name: s, passes: [magnitude: {sparsity: 0.5}]}]
            evaluate: {data: a.txt, context: 64, score_from: 16}
            """, file: "r.yaml")
        XCTAssertEqual(recipe.evaluate?.scoreFrom, 16)
        XCTAssertTrue(RecipePrinter.yaml(recipe).contains("score_from: 16"))
        XCTAssertThrowsError(try RecipeParser.parse("lancet: 1\nstages: [{name: s, passes: [magnitude: {sparsity: 0.5}]}]\nevaluate: {data: a.txt, context: 64, score_from: 63}\n", file: "r.yaml")) {
            XCTAssertTrue("\($0)".contains("evaluate.score_from"), "\($0)")
        }
    }
}
