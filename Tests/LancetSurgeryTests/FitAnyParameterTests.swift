import Foundation
import Lancet
import XCTest

/// Local fitting beyond dense linear weights: the low-rank factors of a factorised linear (lstsq of the outer factor
/// given the inner one; regional on both), a mixture's router and experts, and passes whose targets select no linear.
final class FitAnyParameterTests: XCTestCase {
    /// Replaces `mlp.down` by rank-`rank` factors of its truncated SVD (`W ≈ B·A`, singular values split evenly).
    struct FactorizeDown: BlockPass {
        struct Options: Codable, Sendable { var rank = 8 }
        static let name = "factorize-down"
        static let summary = "test pass: mlp.down as truncated-SVD factors"
        static var defaultOptions: Options { Options() }
        let options: Options
        init(options: Options) { self.options = options }
        func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
            let w = block.parameters["mlp.down.weight"]!
            let (u, s, vt) = try svd(w)
            let (out, inner, r) = (w.shape[0], w.shape[1], options.rank)
            let a = Tensor(shape: [r, inner]) { p in for i in 0..<r { for j in 0..<inner { p[i * inner + j] = s[i].squareRoot() * vt[i, j] } } }
            let b = Tensor(shape: [out, r]) { p in for i in 0..<out { for j in 0..<r { p[i * r + j] = u[i, j] * s[j].squareRoot() } } }
            let k = block.nodeIndex("mlp.down")!
            block.nodes[k].op = LinearOp(lowRankPrefix: "mlp.down")
            block.parameters["mlp.down.weight"] = nil
            block.parameters["mlp.down.a"] = a
            block.parameters["mlp.down.b"] = b
            return PassReport(pass: Self.name, metrics: ["rank": Double(r)])
        }
    }

    func run(_ fit: FitSpec, targets: [String] = ["blocks.*.mlp.down"]) throws -> (Model, Model, RunReport) {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 2
        let dense = TinyLlama.make(sizes, seed: 12)
        var model = dense
        let recipe = Recipe(stages: [Stage(name: "s", passes: [
            PassInvocation(name: "factorize-down", selection: TargetSelection(targets: targets, ignore: []), fit: fit),
        ])])
        let registry = try BuiltinPasses.registry(extra: [[FactorizeDown.self]])
        let report = try Pipeline(recipe: recipe, registry: registry).run(on: &model, calibration: PipelineTests.calibration(model: dense, windows: 8, length: 24))
        try Verifier.verify(model)
        return (dense, model, report)
    }

    func testLeastSquaresRefitsTheOuterFactorOfAFactorisedLinear() throws {
        let (_, unfitted, _) = try run(FitSpec())
        let (_, fitted, report) = try run(FitSpec(method: .lstsq))
        XCTAssertEqual(report.passes.count, 2)
        for (b, r) in report.passes.enumerated() {
            XCTAssertLessThan(r.fitObjectiveAfter!, r.fitObjectiveBefore!, "block \(b)")
            XCTAssertLessThan(r.errorAfterFit!, r.errorAfterCut!, "block \(b): \(r.errorAfterCut!) → \(r.errorAfterFit!)")
            XCTAssertEqual(fitted.blocks[b].parameters["mlp.down.a"], unfitted.blocks[b].parameters["mlp.down.a"], "the inner factor stays")
            XCTAssertNotEqual(fitted.blocks[b].parameters["mlp.down.b"], unfitted.blocks[b].parameters["mlp.down.b"], "the outer factor is refitted")
        }
    }

    func testRegionalFitTrainsBothFactors() throws {
        let (_, unfitted, _) = try run(FitSpec())
        let (_, fitted, report) = try run(FitSpec(method: .regional, steps: 20, learningRate: 1e-3, batch: 4))
        for (b, r) in report.passes.enumerated() {
            XCTAssertLessThan(r.errorAfterFit!, r.errorAfterCut!, "block \(b)")
            XCTAssertNotEqual(fitted.blocks[b].parameters["mlp.down.a"], unfitted.blocks[b].parameters["mlp.down.a"])
            XCTAssertNotEqual(fitted.blocks[b].parameters["mlp.down.b"], unfitted.blocks[b].parameters["mlp.down.b"])
        }
    }

    func testAPassWhoseTargetsSelectNoLinearStillRuns() throws {
        // `mlp.act` selects a SiLU node only: the pass is active on every block (and factorises mlp.down regardless).
        let (_, model, report) = try run(FitSpec(), targets: ["blocks.*.mlp.act"])
        XCTAssertEqual(report.passes.map(\.block), [0, 1])
        XCTAssertNotNil(model.blocks[1].parameters["mlp.down.a"])
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 2
        let block = TinyLlama.make(sizes).blocks[0]
        let selection = TargetSelection(targets: ["blocks.0.mlp.act", "blocks.0.attn_norm"], ignore: [])
        XCTAssertEqual(selection.nodes(in: block, index: 0).map(\.name), ["attn_norm", "mlp.act"])
        XCTAssertTrue(selection.selectsAnything(in: block, index: 0))
        XCTAssertFalse(selection.selectsAnything(in: block, index: 1))
        XCTAssertTrue(selection.linears(in: block, index: 0).isEmpty)
    }

    func testRegionalFitTrainsARoutersAndExpertsWeights() throws {
        // A mixture block fitted to the same block with other weights: the router and every expert move, the error falls.
        func moe(seed: UInt64) -> Block {
            var g = SeededGenerator(seed: seed)
            func w(_ r: Int, _ c: Int) -> Tensor { Tensor.randomNormal(shape: [r, c], std: 1 / Float(c).squareRoot(), generator: &g) }
            var params: [String: Tensor] = ["moe.router.weight": w(4, 48)]
            for e in 0..<4 {
                params["moe.experts.\(e).gate.weight"] = w(16, 48)
                params["moe.experts.\(e).up.weight"] = w(16, 48)
                params["moe.experts.\(e).down.weight"] = w(48, 16)
            }
            return Block(output: "y", nodes: [
                Node("moe", MoEOp(prefix: "moe", experts: 4, topK: 2), inputs: ["x"], outputs: ["moe_out"]),
                Node("residual", AddOp(), inputs: ["x", "moe_out"], outputs: ["y"]),
            ], parameters: params)
        }
        var model = TinyLlama.make()
        model.blocks = [moe(seed: 1)]
        try Verifier.verify(model)
        let teacherBlock = moe(seed: 2)
        let context = ModelPassContextTests.context(model, windows: 6, length: 16)
        let inputs = try context.hiddenStates(enteringBlock: 0, of: model)
        var teacher = inputs
        let executionContext = ExecutionContext(batch: 6, length: 16)
        teacher = try BlockExecutor.forward(teacherBlock, input: inputs, context: executionContext).output
        var block = model.blocks[0]
        let outcome = try context.fit(&block, index: 0, inputs: inputs, teacher: teacher,
                                      spec: FitSpec(method: .regional, steps: 30, learningRate: 3e-3, batch: 3))
        XCTAssertLessThan(outcome.errorAfter, outcome.errorBefore)
        XCTAssertEqual(Set(outcome.fitted), Set(MoEOp(prefix: "moe", experts: 4, topK: 2).parameterNames))
        for name in outcome.fitted { XCTAssertNotEqual(block.parameters[name], model.blocks[0].parameters[name], name) }
    }
}
