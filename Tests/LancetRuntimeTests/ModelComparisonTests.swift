import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import Lancet

/// `ModelComparison` and `DriftPlot` on tiny models: zero counting, block shapes, drift that starts exactly at
/// the changed block, different depths, and a well-formed plot.
final class ModelComparisonTests: XCTestCase {
    private let windows: [[Int32]] = [[1, 5, 9, 2, 7, 3, 11, 4], [6, 2, 8, 1, 0, 12, 3, 5]]

    func testSummaryCountsExactZerosAndBlockShapes() {
        var model = TinyLlama.make(seed: 2)
        let name = "mlp.down.weight"
        let w = model.blocks[1].parameters[name]!
        model.blocks[1].parameters[name] = Tensor(shape: w.shape, (0..<w.count).map { $0 % 4 == 0 ? 0 : w[flat: $0] })
        let s = ModelComparison.summary(of: model)
        XCTAssertEqual(s.parameters, model.parameterCount)
        XCTAssertEqual(s.parameters - s.nonZeroParameters, (w.count + 3) / 4)
        XCTAssertEqual(s.blockShapes, Array(repeating: ModelComparison.BlockShape(heads: 4, kvHeads: 2, ffnWidth: 96), count: 2))
    }

    /// Low-rank linears keep their block's FFN width and are counted; a factor two blocks share counts once, in the
    /// parameters and in the zeros.
    func testSummaryOfFactorisedBlocksKeepsTheirWidthsAndCountsSharedFactorsOnce() {
        var model = TinyLlama.make(seed: 4)
        let gate = model.blocks[0].parameters["mlp.gate.weight"]!
        var inner = Tensor(zeros: [8, gate.shape[1]])
        for j in 0..<gate.shape[1] { inner[j % 8, j] = j < 8 ? 0 : 1 }  // every row has zeros
        let zerosOfInner = inner.scalars.filter { $0 == 0 }.count
        for i in 0..<2 {
            let outer = Tensor(shape: [gate.shape[0], 8], (0..<(gate.shape[0] * 8)).map { Float($0 % 7) + 1 })
            model.blocks[i].factorise(linear: "mlp.gate", into: LowRankFactors(a: inner, b: outer, spectrum: []))
        }
        let s = ModelComparison.summary(of: model)
        XCTAssertEqual(s.parameters, model.parameterCount)
        XCTAssertEqual(s.parameters - s.nonZeroParameters, zerosOfInner)
        XCTAssertEqual(s.blockShapes, Array(repeating: ModelComparison.BlockShape(heads: 4, kvHeads: 2, ffnWidth: 96, lowRankLinears: 1), count: 2))
    }

    func testDriftIsZeroBeforeTheChangedBlockAndPositiveFromIt() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        let a = TinyLlama.make(sizes, seed: 3)
        XCTAssertEqual(try ModelComparison.drift(of: a, from: a, windows: windows), ModelComparison.Drift(perBlock: [0, 0, 0, 0], final: 0))
        var b = a
        let name = "attn.v.weight"
        let v = b.blocks[2].parameters[name]!
        b.blocks[2].parameters[name] = Tensor(shape: v.shape, (0..<v.count).map { 1.5 * v[flat: $0] })
        let drift = try ModelComparison.drift(of: b, from: a, windows: windows)
        let per = try XCTUnwrap(drift.perBlock)
        XCTAssertEqual(Array(per[0..<2]), [0, 0])
        XCTAssertGreaterThan(per[2], 1e-4)
        XCTAssertGreaterThan(per[3], 0)
        XCTAssertGreaterThan(drift.final, 0)
    }

    func testDifferentDepthsCompareOnlyTheFinalStates() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 3
        let a = TinyLlama.make(sizes, seed: 4)
        var b = a
        b.blocks.removeLast()
        let drift = try ModelComparison.drift(of: b, from: a, windows: windows)
        XCTAssertNil(drift.perBlock)
        XCTAssertGreaterThan(drift.final, 0)
    }

    func testPlotIsWellFormedSVGWithOnePointPerBlock() throws {
        let errors = [0.01, 0.02, 0.05, 0.2, 0.0]
        let svg = DriftPlot.svg(perBlock: errors, final: 0.3, title: "b.gguf <against> a.gguf & more")
        let document = try XMLDocument(xmlString: svg)
        XCTAssertEqual(try document.nodes(forXPath: "//*[local-name()='circle']").count, errors.count)
        XCTAssertTrue(svg.contains("&lt;against&gt; a.gguf &amp; more"))
    }
}
