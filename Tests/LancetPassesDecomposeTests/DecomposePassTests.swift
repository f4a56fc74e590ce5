import Foundation
import Lancet
@testable import LancetPassesDecompose
import XCTest

/// The SVD passes through the pipeline on a tiny seeded model: what they leave, the budgets, the update and the fits,
/// and the exports of a factorised model.
final class DecomposePassTests: XCTestCase {
    static let dense = TinyLlama.make(TinyLlama.Sizes(), seed: 11)

    static func calibration(windows: Int = 6, length: Int = 16) -> CalibrationSet {
        var g = SeededGenerator(seed: 5)
        return CalibrationSet(windows: (0..<windows).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: dense.config.vocabularySize)) } }, seed: 5)
    }

    /// Runs one pass with recipe-style options and `fit` on a copy of the dense model; the result verifies.
    static func run(_ pass: String, _ options: [(String, String)], fit: FitSpec = FitSpec()) throws -> (Model, [PassReport]) {
        var model = dense
        let values = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
        let recipe = Recipe(stages: [Stage(name: "decompose", passes: [PassInvocation(name: pass, options: values, fit: fit)])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: calibration())
        try Verifier.verify(model)
        return (model, report.passes)
    }

    /// Dense parameters of every block linear of the dense model, and what the factorised model keeps of them.
    static func linearParameters(_ model: Model) -> Int {
        model.blocks.reduce(0) { total, block in
            total + block.nodes(of: LinearOp.self).reduce(0) { $0 + $1.op.fittableParameters.reduce(0) { $0 + block.parameters[$1]!.count } }
        }
    }

    /// Mean relative block-output error the run reports after the cut.
    static func meanError(_ reports: [PassReport]) -> Double {
        reports.compactMap(\.errorAfterCut).reduce(0, +) / Double(reports.count)
    }

    func testEveryTargetedLinearBecomesLowRankAtTheUniformRatio() throws {
        for pass in ["svd", "asvd", "svd-llm"] {
            let (model, reports) = try Self.run(pass, [("ratio", "0.5")])
            XCTAssertEqual(reports.count, Self.dense.blocks.count)
            for block in model.blocks {
                for (node, op) in block.nodes(of: LinearOp.self) {
                    let (a, b) = try XCTUnwrap(op.factors, "\(pass): \(node.name) stayed dense")
                    let (out, inputs) = (block.parameters[b]!.shape[0], block.parameters[a]!.shape[1])
                    XCTAssertEqual(block.parameters[a]!.shape[0], Int(0.5 * Double(out * inputs) / Double(out + inputs)), "\(pass) \(node.name)")
                }
            }
            let kept = Double(Self.linearParameters(model)) / Double(Self.linearParameters(Self.dense))
            XCTAssertLessThanOrEqual(kept, 0.5, pass)
            XCTAssertGreaterThan(kept, 0.45, pass)
        }
    }

    func testActivationAwareMethodsLeaveLessBlockErrorThanPlainSVD() throws {
        let plain = Self.meanError(try Self.run("svd", [("ratio", "0.5")]).1)
        let asvd = Self.meanError(try Self.run("asvd", [("ratio", "0.5")]).1)
        let whitened = Self.meanError(try Self.run("svd-llm", [("ratio", "0.5"), ("update", "none")]).1)
        XCTAssertLessThan(asvd, plain)
        XCTAssertLessThan(whitened, asvd)
    }

    func testTheUpdateLowersTheBlockErrorOfWhitening() throws {
        let (_, withUpdate) = try Self.run("svd-llm", [("ratio", "0.4")])
        let (_, without) = try Self.run("svd-llm", [("ratio", "0.4"), ("update", "none")])
        XCTAssertLessThan(Self.meanError(withUpdate), Self.meanError(without))
        XCTAssertGreaterThan(withUpdate[0].metrics["updated_linears"] ?? 0, 0, "o, gate, up and down see factorised inputs")
        XCTAssertEqual(without[0].metrics["updated_linears"], 0)
    }

    func testTheResidualUpdateLowersTheBlockErrorFurther() throws {
        let (_, layer) = try Self.run("svd-llm", [("ratio", "0.4")])
        let (_, residual) = try Self.run("svd-llm", [("ratio", "0.4"), ("update", "residual")])
        XCTAssertLessThan(Self.meanError(residual), Self.meanError(layer))
        XCTAssertThrowsError(try Self.run("svd-llm", [("update", "true")])) { error in
            XCTAssertTrue("\(error)".contains("update"), "\(error)")
        }
    }

    func testGlobalAllocationMeetsTheModelWideBudget() throws {
        let dense = Self.linearParameters(Self.dense)
        for pass in ["svd", "svd-llm"] {
            let (model, _) = try Self.run(pass, [("ratio", "0.6"), ("allocation", "global")])
            let kept = Self.linearParameters(model), budget = Int(0.6 * Double(dense))
            XCTAssertLessThanOrEqual(kept, budget, pass)
            let widest = Self.dense.blocks[0].nodes(of: LinearOp.self).map { n, op in Self.dense.blocks[0].parameters[op.weight!]!.shape.reduce(0, +) }.max()!
            XCTAssertGreaterThan(kept, budget - widest, "\(pass): short of the budget by less than one rank of the widest linear")
            let ranks = Set(model.blocks.flatMap { b in b.nodes(of: LinearOp.self).map { b.parameters[$0.op.factors!.a]!.shape[0] } })
            XCTAssertGreaterThan(ranks.count, 3, "\(pass): the allocation spreads ranks unevenly")
        }
    }

    func testLeastSquaresFitLowersTheBlockErrorOfTheFactors() throws {
        let (_, reports) = try Self.run("svd-llm", [("ratio", "0.4"), ("update", "none")], fit: FitSpec(method: .lstsq))
        for r in reports {
            let before = try XCTUnwrap(r.errorAfterCut), after = try XCTUnwrap(r.errorAfterFit)
            XCTAssertLessThanOrEqual(after, before * 1.0001, "block \(r.block ?? -1)")
        }
        XCTAssertLessThan(reports.compactMap(\.errorAfterFit).reduce(0, +), reports.compactMap(\.errorAfterCut).reduce(0, +))
    }

    func testFactorisedModelRoundTripsThroughTheArchiveAndExportsMultipliedBack() throws {
        let (model, _) = try Self.run("svd-llm", [("ratio", "0.5")])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-decompose-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = dir.appendingPathComponent("m.lancet").path, gguf = dir.appendingPathComponent("m.gguf").path
        try model.save(to: archive)
        try model.save(to: gguf)
        let back = try ModelLoader.load(archive, options: LoadOptions()).model
        for (a, b) in zip(model.blocks, back.blocks) {
            XCTAssertEqual(Set(a.parameters.keys), Set(b.parameters.keys))
            for (name, t) in a.parameters { XCTAssertEqual(t, b.parameters[name]!, name) }
        }
        let multiplied = try ModelLoader.load(gguf, options: LoadOptions()).model
        XCTAssertTrue(multiplied.blocks.allSatisfy { $0.nodes(of: LinearOp.self).allSatisfy { $0.op.factors == nil } })
        let tokens: [Int32] = [1, 5, 9, 2, 7, 3]
        let context = { ExecutionContext(batch: 1, length: tokens.count) }
        let l0 = try ModelRunner(model: model).logits(tokens, context: context()).scalars
        let l1 = try ModelRunner(model: back).logits(tokens, context: context()).scalars
        let l2 = try ModelRunner(model: multiplied).logits(tokens, context: context()).scalars
        XCTAssertEqual(l0, l1, "the archive keeps the factorised model exactly")
        XCTAssertLessThan(zip(l0, l2).map { abs($0 - $1) }.max()!, 1e-3, "the GGUF holds the product of the factors")
        XCTAssertLessThan(try XCTUnwrap(FileSize.bytes(at: archive)), try XCTUnwrap(FileSize.bytes(at: gguf)), "the factors take less room than the product")
    }

    func testAHuggingFaceFolderCanKeepTheFactors() throws {
        let (model, _) = try Self.run("svd-llm", [("ratio", "0.5")])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-factors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir.path, keepFactors: true)
        let checkpoint = try SafetensorsCheckpoint(directory: dir.path)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any])
        let ranks = try XCTUnwrap(config["lancet_low_rank"] as? [String: Int])
        XCTAssertEqual(ranks.count, 7 * model.blocks.count)
        XCTAssertNil(checkpoint.weightMap["model.layers.0.self_attn.q_proj.weight"])
        let block = model.blocks[1]
        for (module, node) in [("self_attn.v_proj", "attn.v"), ("mlp.down_proj", "mlp.down"), ("self_attn.q_proj", "attn.q")] {
            let a = try checkpoint.tensor("model.layers.1.\(module).0.weight"), b = try checkpoint.tensor("model.layers.1.\(module).1.weight")
            let (fa, fb) = (block.node(node)!.op as! LinearOp).factors!
            XCTAssertEqual(a, block.parameters[fa]!, module)
            XCTAssertEqual(ranks["model.layers.1.\(module)"], a.shape[0])
            XCTAssertEqual(b.shape, block.parameters[fb]!.shape, module)
            if node != "attn.q" { XCTAssertEqual(b, block.parameters[fb]!, module) }   // q rows are permuted to halves
        }
        // Without the flag the same folder holds the products, which transformers loads as a plain Llama.
        let plain = dir.appendingPathComponent("plain").path
        try model.save(to: plain)
        XCTAssertNotNil(try SafetensorsCheckpoint(directory: plain).weightMap["model.layers.0.self_attn.q_proj.weight"])
    }
}
