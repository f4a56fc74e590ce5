import Foundation
import Lancet
import XCTest

/// The out-of-tree example's model pass (`shortgpt-remove` in `Examples/ExamplePass`, built by
/// `ExamplePluginBuild` against the public `Lancet` product only), loaded as a plugin and run by the pipeline.
final class ExampleModelPassTests: XCTestCase {
    private func registry() throws -> PassRegistry {
        #if !os(Linux)
        throw XCTSkip("plugin loading is implemented and tested on Linux")
        #else
        let registry = try BuiltinPasses.registry()
        _ = try PluginLoader.load(path: try ExamplePluginBuild.library.get(), into: registry)
        return registry
        #endif
    }

    static func model() -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 6
        return TinyLlama.make(sizes, seed: 11)
    }

    static func recipe(count: Int, fit: FitSpec) -> Recipe {
        let options = OptionValue.object([(key: "count", value: .scalar("\(count)", quoted: false, location: nil), location: nil)])
        return Recipe(stages: [Stage(name: "collapse", passes: [PassInvocation(name: "shortgpt-remove", options: options, fit: fit)])])
    }

    /// BI of every block computed by hand: 1 − mean over tokens of cos(x_t, block(x)_t), all windows in one call.
    static func handInfluence(_ model: Model, _ calibration: CalibrationSet) throws -> [Double] {
        let context = ExecutionContext(batch: calibration.windows.count, length: calibration.length)
        var x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
        var result: [Double] = []
        for (i, block) in model.blocks.enumerated() {
            let y = try BlockExecutor.forward(block, index: i, input: x, context: context).output
            let (rows, width) = (x.shape[0], x.shape[1])
            var sum = 0.0
            for r in 0..<rows {
                let a = (0..<width).map { Double(x[r, $0]) }, b = (0..<width).map { Double(y[r, $0]) }
                let dot = zip(a, b).map(*).reduce(0, +)
                sum += dot / (a.map { $0 * $0 }.reduce(0, +) * b.map { $0 * $0 }.reduce(0, +)).squareRoot()
            }
            result.append(1 - sum / Double(rows))
            x = y
        }
        return result
    }

    func testRemovesTheLeastInfluentialBlocksAndTheSpanFitLowersEverySpanError() throws {
        let registry = try registry()
        let d = try XCTUnwrap(registry.descriptor("shortgpt-remove"))
        XCTAssertEqual(d.scope, "model")
        XCTAssertTrue(d.fitsLocally)
        XCTAssertFalse(d.readsTargets)

        let dense = Self.model()
        let calibration = PipelineTests.calibration(model: dense, windows: 8, length: 24)
        let influence = try Self.handInfluence(dense, calibration)
        let expectedRemoved = influence.indices.sorted { influence[$0] < influence[$1] }.prefix(2).sorted()

        for fit in [FitSpec(method: .lstsq), FitSpec(method: .regional, steps: 20, learningRate: 1e-3, batch: 4)] {
            var model = dense
            let report = try Pipeline(recipe: Self.recipe(count: 2, fit: fit), registry: registry).run(on: &model, calibration: calibration)
            try Verifier.verify(model)
            XCTAssertEqual(model.blocks.count, 4)
            let r = try XCTUnwrap(report.passes.first)
            XCTAssertEqual(report.passes.count, 1)
            XCTAssertNil(r.block)
            XCTAssertEqual(r.metrics["blocks_removed"], 2)
            for (i, bi) in influence.enumerated() {
                XCTAssertEqual(r.metrics["bi.\(i)"] ?? .nan, bi, accuracy: 1e-5, "block \(i)")
            }
            XCTAssertEqual(r.notes.first, "removed blocks " + expectedRemoved.map(String.init).joined(separator: ", "))
            // The kept blocks are the others, in order; only the survivors after a gap were refitted.
            let kept = (0..<6).filter { !expectedRemoved.contains($0) }
            XCTAssertEqual(model.blocks.map { $0.parameters["attn_norm.weight"]! }, kept.map { dense.blocks[$0].parameters["attn_norm.weight"]! })
            XCTAssertEqual(r.fit, fit.method.rawValue)
            let before = try XCTUnwrap(r.errorAfterCut), after = try XCTUnwrap(r.errorAfterFit)
            XCTAssertLessThan(after, before, "\(fit.method): span error \(before) → \(after)")
            XCTAssertGreaterThanOrEqual(r.notes.count, 2)
            XCTAssertTrue(r.notes.dropFirst().allSatisfy { $0.contains("span error") }, "\(r.notes)")
        }
    }

    func testRemovingNoBlockIsTheIdentityAndRemovingEveryBlockIsRefused() throws {
        let registry = try registry()
        let dense = Self.model()
        let calibration = PipelineTests.calibration(model: dense, windows: 4, length: 16)
        var model = dense
        let report = try Pipeline(recipe: Self.recipe(count: 0, fit: FitSpec(method: .lstsq)), registry: registry).run(on: &model, calibration: calibration)
        XCTAssertEqual(model.blocks.map(\.parameters), dense.blocks.map(\.parameters))
        XCTAssertEqual(report.passes.first?.notes, ["removed blocks none"])

        let recipe = Self.recipe(count: 6, fit: FitSpec())
        let problems = RecipeValidator.validate(recipe, registry: registry, model: dense, checkFiles: false).map(\.description)
        XCTAssertTrue(problems.contains { $0.contains("shortgpt-remove.count: must leave at least one of the model's 6 blocks, got 6") }, "\(problems)")
    }
}
