import Foundation
import Lancet
@testable import LancetPassesDecompose
import XCTest

/// The cross-layer decomposition: its alternating least squares lowers the objective, the shared factor is really
/// shared (in memory and in the archive), its budget holds, and the exports carry it.
final class TensorizeTests: XCTestCase {
    static let dense: Model = {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        return TinyLlama.make(sizes, seed: 23)
    }()

    static func run(_ options: [(String, String)], fit: FitSpec = FitSpec()) throws -> (Model, PassReport) {
        var model = dense
        var g = SeededGenerator(seed: 9)
        let windows = (0..<6).map { _ in (0..<16).map { _ in Int32(g.nextIndex(below: dense.config.vocabularySize)) } }
        let values = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
        let recipe = Recipe(stages: [Stage(name: "tensorize", passes: [PassInvocation(name: "tensorize", options: values, fit: fit)])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: CalibrationSet(windows: windows, seed: 9))
        try Verifier.verify(model)
        return (model, try XCTUnwrap(report.passes.first))
    }

    func testAlternatingLeastSquaresLowersTheObjectiveFromTheHOSVD() throws {
        var g = SeededGenerator(seed: 4)
        let (out, inputs, blocks) = (24, 32, 5)
        let basis = Tensor.randomNormal(shape: [40, inputs], std: 1, generator: &g)
        let weights = (0..<blocks).map { _ in matmul(Tensor.randomNormal(shape: [out, 40], std: 0.2, generator: &g), basis) }
        let grams = (0..<blocks).map { l -> Tensor in
            var x = Tensor.randomNormal(shape: [200, inputs], std: 1, generator: &g)
            x.withUnsafeMutableBufferPointer { p in for t in 0..<200 { p[t * inputs + l] *= 10 } }   // a loud channel per block
            return gram(x)
        }
        let r = try SharedInnerFactor.fit(weights: weights, grams: grams, rank: 12, damping: 1e-6, iterations: 4, cgSteps: 20)
        XCTAssertEqual(r.objective.count, 5)
        for (a, b) in zip(r.objective, r.objective.dropFirst()) { XCTAssertLessThanOrEqual(b, a * (1 + 1e-4)) }
        XCTAssertLessThan(r.objective.last!, r.objective.first!)
        // At full rank the shared factor loses nothing.
        let full = try SharedInnerFactor.fit(weights: weights, grams: grams, rank: inputs, damping: 1e-7, iterations: 0, cgSteps: 1)
        XCTAssertLessThan(full.objective[0], 1e-4)
    }

    func testTheInnerFactorIsSharedAndTheBudgetHolds() throws {
        let (model, report) = try Self.run([("ratio", "0.6")])
        let groups = model.sharedParameterGroups
        // One group per role (q, k, v, o, gate, up, down), each across the 4 blocks, holding the inner factor.
        XCTAssertEqual(groups.count, 7)
        for group in groups {
            XCTAssertEqual(group.count, 4)
            XCTAssertTrue(group.allSatisfy { $0.hasSuffix(".a") }, "\(group)")
        }
        XCTAssertLessThanOrEqual(report.metrics["parameters_after"]!, 0.6 * report.metrics["parameters_before"]!)
        // The model counts a shared factor once: the dense count minus what the pass reports it saved.
        XCTAssertEqual(Double(model.parameterCount), Double(Self.dense.parameterCount) - report.metrics["parameters_before"]! + report.metrics["parameters_after"]!)
        XCTAssertGreaterThan(report.metrics["parameters_after"]!, 0.5 * report.metrics["parameters_before"]!)
    }

    func testTheLeastSquaresFitKeepsTheFactorSharedAndLowersTheBlockError() throws {
        let (model, report) = try Self.run([("ratio", "0.5")], fit: FitSpec(method: .lstsq))
        XCTAssertEqual(model.sharedParameterGroups.count, 7)
        XCTAssertLessThan(try XCTUnwrap(report.errorAfterFit), try XCTUnwrap(report.errorAfterCut))
        XCTAssertThrowsError(try Self.run([("ratio", "0.5")], fit: FitSpec(method: .regional)))
    }

    func testASharedFactorRoundTripsThroughTheArchiveAndBothExports() throws {
        let (model, _) = try Self.run([("ratio", "0.6")])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-tensorize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = dir.appendingPathComponent("m.lancet").path
        try model.save(to: archive)
        let back = try ModelLoader.load(archive, options: LoadOptions()).model
        XCTAssertEqual(back.sharedParameterGroups, model.sharedParameterGroups, "the archive restores the sharing")
        for (a, b) in zip(model.blocks, back.blocks) { for (name, t) in a.parameters { XCTAssertEqual(t, b.parameters[name]!, name) } }
        // Written once: the archive is smaller than the same model with every factor unshared.
        var unshared = model
        for i in unshared.blocks.indices { for (name, t) in unshared.blocks[i].parameters { unshared.blocks[i].parameters[name] = Tensor(shape: t.shape, t.scalars) } }
        XCTAssertTrue(unshared.sharedParameterGroups.isEmpty)
        let copies = dir.appendingPathComponent("copies.lancet").path
        try unshared.save(to: copies)
        let sharedA = model.sharedParameterGroups.reduce(0) { total, group in
            let parts = group[0].split(separator: ".", maxSplits: 2)
            return total + (group.count - 1) * model.blocks[Int(parts[1])!].parameters[String(parts[2])]!.count * 4
        }
        XCTAssertEqual(try XCTUnwrap(FileSize.bytes(at: copies)) - (try XCTUnwrap(FileSize.bytes(at: archive))), sharedA, accuracy: 4096)
        // `lancet inspect`'s summary reads the architecture back from the archived IR.
        let summary = try ModelLoader.summary(archive)
        XCTAssertEqual(summary.format, "lancet")
        XCTAssertEqual(summary.architecture, model.config.architecture)
        XCTAssertEqual(summary.blocks, model.blocks.count)
        XCTAssertEqual(summary.hiddenSize, model.config.hiddenSize)
        XCTAssertEqual(summary.ffnWidth, [try XCTUnwrap(LlamaBlock.gateWidth(of: Self.dense.blocks[0]))])
        XCTAssertEqual(summary.heads, [try XCTUnwrap(LlamaBlock.attentionSizes(of: Self.dense.blocks[0])).heads])
        XCTAssertEqual(summary.lowRankLinears, 7 * model.blocks.count)
        XCTAssertEqual(summary.sharedTensors, model.sharedParameterGroups.count)
        XCTAssertEqual(summary.parameterCount, model.parameterCount, "shared tensors are stored, and counted, once")
        XCTAssertTrue(summary.render().contains("Lancet archive"))
        // A non-finite weight in an archive is refused like in any other model file, naming the tensor.
        var broken = model
        broken.blocks[2].parameters["mlp.down.b"]![1, 0] = .nan
        let brokenPath = dir.appendingPathComponent("broken.lancet").path
        try broken.save(to: brokenPath)
        XCTAssertThrowsError(try ModelLoader.load(brokenPath, options: LoadOptions())) { error in
            XCTAssertTrue("\(error)".contains("blocks.2.mlp.down.b"), "\(error)")
        }
        var reporting = LoadOptions()
        reporting.nonFiniteWeights = .report
        XCTAssertEqual(try ModelLoader.load(brokenPath, options: reporting).nonFiniteTensors.count, 1)
        // GGUF and Hugging Face exports multiply the shared factor into every block's weight.
        let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let expected = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        for path in [dir.appendingPathComponent("m.gguf").path, dir.appendingPathComponent("hf").path] {
            try model.save(to: path)
            let loaded = try ModelLoader.load(path, options: LoadOptions()).model
            let logits = try ModelRunner(model: loaded).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
            XCTAssertLessThan(zip(expected, logits).map { abs($0 - $1) }.max()!, 1e-3, path)
        }
    }
}
