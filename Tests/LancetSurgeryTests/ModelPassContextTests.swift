import Foundation
import Lancet
@testable import LancetSurgery
import XCTest

/// The services a model pass gets from `ModelPassContext`: sweeps, hidden states, span teachers, span fits, and
/// the validator's rule for `fit:` and `targets:` on model passes.
final class ModelPassContextTests: XCTestCase {
    static func model(blocks: Int = 4, seed: UInt64 = 3) -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = blocks
        return TinyLlama.make(sizes, seed: seed)
    }

    static func context(_ model: Model, windows: Int = 5, length: Int = 16, fit: FitSpec = FitSpec()) -> ModelPassContext {
        let calibration = PipelineTests.calibration(model: model, windows: windows, length: length)
        return .standalone(model: model, calibrationWindows: calibration.windows, fit: fit, windowsPerCall: 2)
    }

    /// Every block's outputs on all windows at once, the reference the chunked services must reproduce.
    static func referenceStates(_ model: Model, _ context: ModelPassContext) throws -> [Tensor] {
        var x = try ModelRunner(model: model).embed(Array(context.calibrationWindows.joined()))
        var states = [x]
        for (i, block) in model.blocks.enumerated() {
            // Chunks of two windows, as the context runs them (a call's batch size can change the last bits).
            var y = Tensor(zeros: x.shape)
            var w = 0
            while w < context.windowCount {
                let range = w..<min(w + 2, context.windowCount)
                let rows = (range.lowerBound * context.length)..<(range.upperBound * context.length)
                let out = try BlockExecutor.forward(block, index: i, input: x.slicingRows(rows),
                                                    context: ExecutionContext(batch: range.count, length: context.length)).output
                y.withUnsafeMutableBufferPointer { p in out.withUnsafeBufferPointer { o in
                    for k in 0..<o.count { p[rows.lowerBound * x.shape[1] + k] = o[k] }
                }}
                w = range.upperBound
            }
            x = y
            states.append(x)
        }
        return states
    }

    func testSweepVisitsEveryBlockOfEveryChunkWithItsInputsAndOutputs() throws {
        let model = Self.model()
        let context = Self.context(model)
        let states = try Self.referenceStates(model, context)
        var visits: [(Int, Range<Int>)] = []
        try context.sweep(model) { chunk in
            visits.append((chunk.block, chunk.windows))
            let rows = (chunk.windows.lowerBound * context.length)..<(chunk.windows.upperBound * context.length)
            XCTAssertEqual(chunk.input, states[chunk.block].slicingRows(rows), "input of block \(chunk.block), windows \(chunk.windows)")
            XCTAssertEqual(chunk.output, states[chunk.block + 1].slicingRows(rows), "output of block \(chunk.block), windows \(chunk.windows)")
        }
        let expected = [0..<2, 2..<4, 4..<5].flatMap { w in (0..<4).map { ($0, w) } }
        XCTAssertEqual(visits.map(\.0), expected.map(\.0))
        XCTAssertEqual(visits.map(\.1), expected.map(\.1))

        var partial: [Int] = []
        try context.sweep(model, blocks: 1..<3) { partial.append($0.block) }
        XCTAssertEqual(partial, [1, 2, 1, 2, 1, 2])

        // A window range: only those windows, chunked from its start, the same states as the whole sweep's
        // chunks that start there (windows 2…3 are the whole sweep's second chunk).
        var selected: [Range<Int>] = []
        try context.sweep(model, windows: 2..<5) { chunk in
            if chunk.block == 0 { selected.append(chunk.windows) }
            let rows = (chunk.windows.lowerBound * context.length)..<(chunk.windows.upperBound * context.length)
            XCTAssertEqual(chunk.output, states[chunk.block + 1].slicingRows(rows), "output of block \(chunk.block), windows \(chunk.windows)")
        }
        XCTAssertEqual(selected, [2..<4, 4..<5])

        // Captured values are the block's own on the chunk; nothing is captured unless asked.
        try context.sweep(model, blocks: 2..<3, capture: ["mlp_in"]) { chunk in
            let tape = try BlockExecutor.forward(model.blocks[2], index: 2, input: chunk.input,
                                                 context: ExecutionContext(batch: chunk.windows.count, length: context.length), keepValues: true)
            XCTAssertEqual(Set(chunk.values.keys), ["mlp_in"])
            XCTAssertEqual(chunk.values["mlp_in"], tape.values["mlp_in"], "windows \(chunk.windows)")
        }
        try context.sweep(model, blocks: 0..<1) { XCTAssertTrue($0.values.isEmpty) }
    }

    func testSweepByBlockHandsOutSweepsChunksBlockByBlock() throws {
        let model = Self.model()
        let context = Self.context(model)
        var chunks: [String: ModelPassContext.BlockChunk] = [:]
        try context.sweep(model, windows: 1..<5, capture: ["mlp_in"]) { chunks["\($0.block) \($0.windows)"] = $0 }
        var order: [String] = [], finished: [Int] = []
        try context.sweepByBlock(model, windows: 1..<5, capture: ["mlp_in"], visit: { chunk in
            let key = "\(chunk.block) \(chunk.windows)"
            order.append(key)
            XCTAssertEqual(finished.count, chunk.block, "block \(chunk.block) visited before the earlier blocks finished")
            XCTAssertEqual(chunk.input, chunks[key]?.input, key)
            XCTAssertEqual(chunk.output, chunks[key]?.output, key)
            XCTAssertEqual(chunk.values, chunks[key]?.values, key)
        }, finishBlock: { finished.append($0) })
        XCTAssertEqual(order, (0..<4).flatMap { b in ["\(b) 1..<3", "\(b) 3..<5"] })
        XCTAssertEqual(finished, [0, 1, 2, 3])
    }

    func testHiddenStatesAdvanceAndSpanOutputsAgreeWithRunningTheBlocks() throws {
        let model = Self.model()
        let context = Self.context(model)
        let states = try Self.referenceStates(model, context)
        for k in 0...4 { XCTAssertEqual(try context.hiddenStates(enteringBlock: k, of: model), states[k], "entering block \(k)") }
        var x = states[1]
        try context.advance(&x, through: 1..<3, of: model)
        XCTAssertEqual(x, states[3])
        XCTAssertEqual(try context.spanOutputs(1...3, inputs: states[1]), states[4])
        XCTAssertEqual(try context.spanOutputs(2...2, inputs: states[2]), states[3], "a span of one block is its own output")
        XCTAssertEqual(try context.error(of: model.blocks[2], index: 2, inputs: states[2], teacher: states[3]), 0)
    }

    func testSpanTeacherIsTheOriginalModelEvenAfterThePassEditsItsOwnCopy() throws {
        var model = Self.model()
        let context = Self.context(model)
        let states = try Self.referenceStates(model, context)
        model.blocks.remove(at: 1)
        XCTAssertEqual(try context.spanOutputs(1...2, inputs: states[1]), states[3])
    }

    func testLeastSquaresSpanFitLowersTheSpanErrorAndKeepsMaskedWeightsZero() throws {
        let model = Self.model()
        let context = Self.context(model, fit: FitSpec(method: .lstsq))
        let inputs = try context.hiddenStates(enteringBlock: 1, of: model)
        let teacher = try context.spanOutputs(1...2, inputs: inputs)
        // Block 2 stands in for blocks 1…2, with half of its down projection masked.
        var block = model.blocks[2]
        let down = block.parameters["mlp.down.weight"]!
        block.setMasked("mlp.down.weight", weight: down, mask: Mask(shape: down.shape, keep: (0..<down.count).map { UInt8($0 % 2) }))
        let masked = block
        let outcome = try context.fit(&block, index: 1, inputs: inputs, teacher: teacher)
        XCTAssertEqual(outcome.method, .lstsq)
        XCTAssertEqual(outcome.fitted, ["mlp.down.weight", "attn.o.weight"], "the rounds on the attention output lowered the error too")
        XCTAssertLessThan(outcome.errorAfter, 0.9 * outcome.errorBefore, "span error \(outcome.errorBefore) → \(outcome.errorAfter)")
        XCTAssertLessThan(outcome.objectiveAfter!, outcome.objectiveBefore!)
        XCTAssertEqual(try context.error(of: block, index: 1, inputs: inputs, teacher: teacher), outcome.errorAfter)
        block.parameters["mlp.down.weight"]!.withUnsafeBufferPointer { w in
            XCTAssertTrue((0..<w.count).allSatisfy { $0 % 2 == 1 || w[$0] == 0 }, "masked weights regrew")
        }
        for name in block.parameters.keys where !["mlp.down.weight", "attn.o.weight"].contains(name) {
            XCTAssertEqual(block.parameters[name], model.blocks[2].parameters[name], "\(name) changed")
        }
        // The rounds end below the first closed-form fit of the down projection alone.
        var downOnly = masked
        let activations = CalibrationActivations(inputs: inputs, teacher: teacher, windows: context.windowCount, length: context.length)
        let sweep = BlockSweep(windowsPerCall: 2, length: context.length)
        _ = try SpanFit.fitOutputWriter(&downOnly, try SpanFit.outputWriter(of: downOnly, index: 1), index: 1, calibration: activations,
                                        damping: FitSpec().damping, sweep: sweep)
        let firstFit = try context.error(of: downOnly, index: 1, inputs: inputs, teacher: teacher)
        XCTAssertLessThan(outcome.errorAfter, firstFit, "rounds: \(firstFit) → \(outcome.errorAfter)")
    }

    func testLeastSquaresSpanFitIsExactWhenTheTeacherIsReachable() throws {
        // The teacher is the block itself with another down projection: lstsq without damping recovers it.
        let model = Self.model()
        var context = Self.context(model, windows: 16)            // 256 tokens: the FFN's 96 channels are determined
        let inputs = try context.hiddenStates(enteringBlock: 2, of: model)
        var target = model.blocks[2]
        target.parameters["mlp.down.weight"] = Elementwise.map(target.parameters["mlp.down.weight"]!) { $0 * 0.5 + 0.01 }
        context = .standalone(model: Model(config: model.config, embedding: model.embedding, blocks: [target], finalNorm: model.finalNorm,
                                           outputHead: model.outputHead),
                              calibrationWindows: context.calibrationWindows, windowsPerCall: 2)
        let teacher = try context.spanOutputs(0...0, inputs: inputs)
        var block = model.blocks[2]
        let outcome = try context.fit(&block, index: 0, inputs: inputs, teacher: teacher, spec: FitSpec(method: .lstsq, damping: 0))
        XCTAssertGreaterThan(outcome.errorBefore, 1e-2)
        XCTAssertLessThan(outcome.errorAfter, 1e-8, "exact recovery: \(outcome.errorAfter)")
    }

    func testRegionalSpanFitLowersTheSpanError() throws {
        let model = Self.model()
        let context = Self.context(model, fit: FitSpec(method: .regional, steps: 30, learningRate: 1e-3, batch: 2))
        let inputs = try context.hiddenStates(enteringBlock: 1, of: model)
        let teacher = try context.spanOutputs(1...2, inputs: inputs)
        var block = model.blocks[2]
        let outcome = try context.fit(&block, index: 1, inputs: inputs, teacher: teacher)
        XCTAssertEqual(outcome.method, .regional)
        XCTAssertLessThan(outcome.errorAfter, outcome.errorBefore, "span error \(outcome.errorBefore) → \(outcome.errorAfter)")
        XCTAssertTrue(outcome.fitted.contains("attn.q.weight") && outcome.fitted.contains("mlp.down.weight"))
    }

    func testNoFitOnlyMeasures() throws {
        let model = Self.model()
        let context = Self.context(model)
        let inputs = try context.hiddenStates(enteringBlock: 1, of: model)
        let teacher = try context.spanOutputs(1...2, inputs: inputs)
        var block = model.blocks[2]
        let outcome = try context.fit(&block, index: 1, inputs: inputs, teacher: teacher)
        XCTAssertEqual(outcome.method, FitSpec.Method.none)
        XCTAssertEqual(outcome.errorBefore, outcome.errorAfter)
        XCTAssertGreaterThan(outcome.errorBefore, 0)
        XCTAssertEqual(block.parameters, model.blocks[2].parameters)
    }

    func testServicesThatNeedCalibrationSayWhenThereIsNone() throws {
        let model = Self.model()
        let context = ModelPassContext.standalone(model: model)
        XCTAssertThrowsError(try context.hiddenStates(enteringBlock: 1, of: model)) { XCTAssertTrue("\($0)".contains("calibration"), "\($0)") }
        XCTAssertThrowsError(try context.sweep(model) { _ in }) { XCTAssertTrue("\($0)".contains("calibration"), "\($0)") }
    }

    func testLeastSquaresSpanFitNamesABlockThatDoesNotEndInALinear() throws {
        let model = Self.model()
        let context = Self.context(model, fit: FitSpec(method: .lstsq))
        let inputs = try context.hiddenStates(enteringBlock: 0, of: model)
        var block = model.blocks[0]
        block.nodes.removeLast()                         // the MLP's residual add: the output is now 'mlp_out'
        block.output = "mlp_out"
        XCTAssertThrowsError(try context.fit(&block, index: 0, inputs: inputs, teacher: inputs)) { error in
            XCTAssertTrue("\(error)".contains("ends in 'residual + linear'"), "\(error)")
        }
    }

    // MARK: - Model passes in the pipeline and the validator

    /// A model pass that reverses the block order: uses neither `fit:` nor `targets:`.
    struct ReverseBlocks: ModelPass {
        struct Options: Codable, Sendable {}
        static let name = "reverse-blocks"
        static let summary = "reverses the block order (a test pass)"
        static var defaultOptions: Options { Options() }
        static var needsCalibration: Bool { false }
        init(options: Options) {}
        func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
            model.blocks.reverse()
            return PassReport(pass: Self.name, metrics: ["blocks": Double(model.blocks.count)], notes: ["reversed"])
        }
    }

    func testValidatorRefusesFitAndTargetsOnAModelPassThatUsesNeither() throws {
        let registry = try BuiltinPasses.registry(extra: [[ReverseBlocks.self]])
        let d = try XCTUnwrap(registry.descriptor("reverse-blocks"))
        XCTAssertEqual(d.scope, "model")
        XCTAssertFalse(d.fitsLocally)
        XCTAssertFalse(d.readsTargets)
        XCTAssertTrue(try XCTUnwrap(registry.descriptor("wanda")).fitsLocally)
        let model = Self.model()
        func problems(_ invocation: PassInvocation) -> [String] {
            let recipe = Recipe(calibration: CalibrationSpec(data: "c4.txt", samples: 4, context: 16), stages: [Stage(name: "s", passes: [invocation])])
            return RecipeValidator.validate(recipe, registry: registry, model: model, checkFiles: false).map(\.description)
        }
        XCTAssertEqual(problems(PassInvocation(name: "reverse-blocks")), [])
        let fit = problems(PassInvocation(name: "reverse-blocks", fit: FitSpec(method: .lstsq)))
        XCTAssertEqual(fit.count, 1)
        XCTAssertTrue(fit[0].contains("fit: model pass 'reverse-blocks' does no local fitting"), fit[0])
        let targets = problems(PassInvocation(name: "reverse-blocks", selection: TargetSelection(targets: ["blocks.0.*"], ignore: [])))
        XCTAssertEqual(targets.count, 1)
        XCTAssertTrue(targets[0].contains("targets: model pass 'reverse-blocks' does not read `targets`/`ignore`"), targets[0])
    }

    func testPipelineHandsAModelPassItsReportCallbackAndVerifiesTheModel() throws {
        let registry = try BuiltinPasses.registry(extra: [[ReverseBlocks.self]])
        var model = Self.model()
        let original = model
        let seen = Locked<[PassReport]>([])
        var options = RunOptions()
        options.modelPassFinished = { report, _ in seen.mutate { $0.append(report) } }
        let recipe = Recipe(stages: [Stage(name: "s", passes: [PassInvocation(name: "reverse-blocks")])])
        let report = try Pipeline(recipe: recipe, registry: registry).run(on: &model, calibration: nil, options: options)
        XCTAssertEqual(report.passes.count, 1)
        XCTAssertNil(report.passes[0].block)
        XCTAssertEqual(report.passes[0].notes, ["reversed"])
        XCTAssertEqual(seen.value.map(\.pass), ["reverse-blocks"])
        XCTAssertEqual(model.blocks.map(\.parameters), original.blocks.reversed().map(\.parameters))
    }
}

/// A value shared with a `@Sendable` callback.
final class Locked<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout T) -> Void) { lock.lock(); defer { lock.unlock() }; body(&stored) }
}

/// The context's whole-model gradient service against `ModelGradients` on the whole calibration set at once.
final class ModelPassContextGradientTests: XCTestCase {
    func testLossGradientsOverBatchesAddUpToTheWholeSet() throws {
        let model = ModelPassContextTests.model(blocks: 2)
        let context = ModelPassContextTests.context(model, windows: 5, length: 12)
        var batched: [Int: Tensor] = [:], ranges: [Range<Int>] = []
        let mean = try context.lossGradients(of: model, windowsPerBatch: 2, captureGradients: ["mlp_out"]) { range, step in
            if step.block == 0 { ranges.append(range) }
            Linear.accumulate(&batched[step.block], step.parameterGradients["attn.q.weight"]!)
            XCTAssertNotNil(step.valueGradients["mlp_out"])
        }
        XCTAssertEqual(ranges, [0..<2, 2..<4, 4..<5])
        var whole: [Int: Tensor] = [:]
        let sum = try ModelGradients(model: model).backward(windows: context.calibrationWindows) { whole[$0.block] = $0.parameterGradients["attn.q.weight"] }
        XCTAssertEqual(mean, sum / Double(5 * 11), accuracy: 1e-6)
        for b in 0..<2 {
            let difference = Elementwise.zip(batched[b]!, whole[b]!) { $0 - $1 }
            XCTAssertLessThan(difference.relativeError(to: Tensor(zeros: difference.shape)) / whole[b]!.relativeError(to: Tensor(zeros: difference.shape)), 1e-9)
        }
    }

    /// `fitBlocks(linears: .every)` is the pipeline's block fit: a model cut by magnitude masks (which depend on the
    /// weights only) and then fitted block by block gets the weights the pipeline's magnitude + lstsq gives it, masks
    /// kept; `.output` refits only the linears writing each block's output.
    func testEveryLinearFitIsThePipelinesBlockFit() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 3
        let model = TinyLlama.make(sizes, seed: 4)
        let calibration = PipelineTests.calibration(model: model)
        func pipeline(_ fit: FitSpec) throws -> Model {
            var m = model
            var recipe = PipelineTests.recipe("magnitude", options: [("sparsity", "0.5")], fit: fit.method)
            recipe.stages[0].passes[0].fit = fit
            _ = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &m, calibration: calibration, options: RunOptions())
            return m
        }
        let masked = try pipeline(FitSpec(method: .none))
        for teacher in [FitSpec.Teacher.block, .model] {
            var spec = FitSpec(method: .lstsq)
            spec.teacher = teacher
            let piped = try pipeline(spec)
            let context = ModelPassContext.standalone(model: model, calibrationWindows: calibration.windows, fit: spec,
                                                      windowsPerCall: RunOptions().windowsPerCall)
            var every = masked
            let (before, after) = try context.fitBlocks(&every, linears: .every)
            XCTAssertLessThan(after, before, "teacher \(teacher)")
            for (b, block) in every.blocks.enumerated() {
                for (name, weight) in block.parameters where weight.rank == 2 {
                    XCTAssertEqual(weight, piped.blocks[b].parameters[name]!, "teacher \(teacher), block \(b) \(name)")
                    if let mask = block.masks[name] {
                        XCTAssertTrue(zip(weight.scalars, mask.keep).allSatisfy { $1 != 0 || $0 == 0 }, "block \(b) \(name): a masked weight moved")
                    }
                }
            }
        }
        let context = ModelPassContext.standalone(model: model, calibrationWindows: calibration.windows, fit: FitSpec(method: .lstsq),
                                                  windowsPerCall: RunOptions().windowsPerCall)
        var output = masked
        try context.fitBlocks(&output, linears: .output)
        for (b, block) in output.blocks.enumerated() {
            for (name, weight) in block.parameters where weight.rank == 2 && !name.hasPrefix("mlp.down") && !name.hasPrefix("attn.o") {
                XCTAssertEqual(weight, masked.blocks[b].parameters[name]!, "block \(b) \(name) is not an output writer")
            }
        }
    }
}
