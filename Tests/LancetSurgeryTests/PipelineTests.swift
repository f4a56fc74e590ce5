import Foundation
import Lancet
import XCTest

/// The block-streaming pipeline on tiny seeded models.
final class PipelineTests: XCTestCase {
    static func calibration(model: Model, windows: Int = 6, length: Int = 24, seed: UInt64 = 1) -> CalibrationSet {
        var g = SeededGenerator(seed: seed)
        return CalibrationSet(windows: (0..<windows).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) } }, seed: seed)
    }

    static func recipe(_ pass: String, options: [(String, String)], fit: FitSpec.Method, targets: [String] = []) -> Recipe {
        let opts = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
        return Recipe(stages: [Stage(name: "s", passes: [
            PassInvocation(name: pass, options: opts, selection: TargetSelection(targets: targets, ignore: []), fit: FitSpec(method: fit)),
        ])])
    }

    func run(_ recipe: Recipe, model: Model, options: RunOptions = RunOptions()) throws -> (Model, RunReport) {
        var m = model
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &m, calibration: Self.calibration(model: model), options: options)
        return (m, report)
    }

    func testMagnitudeWithLeastSquaresFitHasLowerBlockErrorThanWithoutFitting() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 3
        let model = TinyLlama.make(sizes, seed: 4)
        let (unfitted, plain) = try run(Self.recipe("magnitude", options: [("sparsity", "0.5")], fit: .none), model: model)
        let (fitted, lstsq) = try run(Self.recipe("magnitude", options: [("sparsity", "0.5")], fit: .lstsq), model: model)
        try Verifier.verify(unfitted)
        try Verifier.verify(fitted)
        XCTAssertEqual(plain.passes.count, 3)
        for (a, b) in zip(plain.passes, lstsq.passes) {
            XCTAssertLessThan(b.errorAfterFit!, a.errorAfterFit!, "block \(a.block!): fitted \(b.errorAfterFit!) vs unfitted \(a.errorAfterFit!)")
            XCTAssertLessThan(b.fitObjectiveAfter!, b.fitObjectiveBefore!)
            XCTAssertGreaterThan(b.errorAfterCut!, b.errorAfterFit!)
        }
        // Masks survive fitting: every targeted weight is exactly half zeros.
        for block in fitted.blocks {
            for (name, mask) in block.masks {
                XCTAssertEqual(mask.sparsity, 0.5, accuracy: 1e-9, name)
                let zeros = block.parameters[name]!.scalars.filter { $0 == 0 }.count
                XCTAssertGreaterThanOrEqual(zeros, mask.keep.count / 2, name)
            }
        }
    }

    func testRegionalFitLowersBlockError() throws {
        let model = TinyLlama.make(seed: 5)
        var recipe = Self.recipe("magnitude", options: [("sparsity", "0.6")], fit: .regional)
        recipe.stages[0].passes[0].fit.steps = 30
        recipe.stages[0].passes[0].fit.learningRate = 1e-3
        let (_, report) = try run(recipe, model: model)
        for r in report.passes { XCTAssertLessThan(r.errorAfterFit!, r.errorAfterCut!, "block \(r.block!)") }
    }

    /// The residual stream after the last block on the calibration windows.
    func finalStates(_ model: Model) throws -> Tensor {
        let calibration = Self.calibration(model: model)
        return try ModelRunner(model: model).hiddenStates(Array(calibration.windows.joined()),
                                                          context: ExecutionContext(batch: calibration.windows.count, length: calibration.length))
    }

    func testModelTeacherFitMatchesTheDenseModelRatherThanEachDenseBlock() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 3
        let model = TinyLlama.make(sizes, seed: 4)
        var recipe = Self.recipe("magnitude", options: [("sparsity", "0.6")], fit: .lstsq)
        let (blockFitted, blockReport) = try run(recipe, model: model)
        recipe.stages[0].passes[0].fit.teacher = .model
        let (modelFitted, modelReport) = try run(recipe, model: model)
        try Verifier.verify(modelFitted)
        // Block 0 reads the same inputs in both models: the same fit, bit for bit, but for the linear that writes the
        // block's output into the residual stream (`down`), which under a model teacher also absorbs what the cut
        // attention changed in the stream it adds to.
        for name in model.blocks[0].parameters.keys where name != "mlp.down.weight" {
            XCTAssertEqual(blockFitted.blocks[0].parameters[name], modelFitted.blocks[0].parameters[name], name)
        }
        XCTAssertNotEqual(blockFitted.blocks[0].parameters["mlp.down.weight"], modelFitted.blocks[0].parameters["mlp.down.weight"])
        // Later blocks start from the error the blocks before them left (reported against the dense model), and
        // are fitted to the dense model's activations, not to the dense block on the cut model's.
        XCTAssertEqual(blockReport.passes[1].errorBefore, 0)
        XCTAssertGreaterThan(modelReport.passes[1].errorBefore!, 0)
        XCTAssertNotEqual(blockFitted.blocks[2].parameters["mlp.down.weight"], modelFitted.blocks[2].parameters["mlp.down.weight"])
        // The last block's reported error is the model's: the final states against the dense model's.
        let dense = try finalStates(model)
        let viaModel = try finalStates(modelFitted).relativeError(to: dense)
        XCTAssertEqual(modelReport.passes[2].errorAfterFit!, viaModel, accuracy: 1e-6 * max(1, viaModel))
        // Matching the dense model's activations brings the final states closer to the dense model's.
        let viaBlock = try finalStates(blockFitted).relativeError(to: dense)
        XCTAssertLessThan(viaModel, viaBlock, "model teacher \(viaModel) vs block teacher \(viaBlock)")
    }

    func testTwoRunsWithTheSameSeedAreBitIdentical() throws {
        let model = TinyLlama.make(seed: 6)
        let recipe = Self.recipe("magnitude", options: [("sparsity", "0.5")], fit: .lstsq)
        let (a, _) = try run(recipe, model: model)
        let (b, _) = try run(recipe, model: model)
        for (x, y) in zip(a.blocks, b.blocks) {
            for name in x.parameters.keys { XCTAssertEqual(x.parameters[name], y.parameters[name], name) }
        }
    }

    func testResumingFromACheckpointGivesTheSameModelAsAnUninterruptedRun() throws {
        try assertResumingGivesTheSameModel(teacher: .block)
    }

    func testResumingAModelTeacherFitGivesTheSameModelAsAnUninterruptedRun() throws {
        try assertResumingGivesTheSameModel(teacher: .model)
    }

    func assertResumingGivesTheSameModel(teacher: FitSpec.Teacher) throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        let model = TinyLlama.make(sizes, seed: 7)
        var recipe = Self.recipe("magnitude", options: [("sparsity", "0.5")], fit: .lstsq)
        recipe.stages[0].passes[0].fit.teacher = teacher
        let (reference, _) = try run(recipe, model: model)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-ckpt-\(getpid())-\(teacher)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = RunOptions()
        options.checkpointDirectory = dir
        options.fingerprint = "test"
        let finished = Counter()
        options.blockFinished = { _, _, _ in finished.increment() }
        options.stopRequested = { finished.value >= 2 }
        var interrupted = model
        XCTAssertThrowsError(try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry())
            .run(on: &interrupted, calibration: Self.calibration(model: model), options: options)) { e in
            XCTAssertTrue("\(e)".contains("interrupted"), "\(e)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/state.json"))
        var resumedOptions = RunOptions()
        resumedOptions.checkpointDirectory = dir
        resumedOptions.fingerprint = "test"
        resumedOptions.resume = true
        var resumed = model
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry())
            .run(on: &resumed, calibration: Self.calibration(model: model), options: resumedOptions)
        XCTAssertEqual(report.passes.count, 4)
        for (x, y) in zip(reference.blocks, resumed.blocks) {
            for name in x.parameters.keys { XCTAssertEqual(x.parameters[name], y.parameters[name], name) }
            XCTAssertEqual(x.masks, y.masks)
        }
        var wrongFingerprint = resumedOptions
        wrongFingerprint.fingerprint = "other"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("{\"fingerprint\":\"test\",\"stage\":0,\"block\":1,\"reports\":[]}".utf8).write(to: URL(fileURLWithPath: dir + "/state.json"))
        var again = model
        XCTAssertThrowsError(try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry())
            .run(on: &again, calibration: Self.calibration(model: model), options: wrongFingerprint))
    }
}

/// A thread-safe counter for callbacks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    func increment() { lock.lock(); count += 1; lock.unlock() }
}
