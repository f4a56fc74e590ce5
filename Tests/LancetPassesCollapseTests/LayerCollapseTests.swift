import Foundation
import Lancet
@testable import LancetPassesCollapse
import XCTest

/// `laco` and `replace-span` on tiny seeded models: the merge formula, the similarity against its hand computation,
/// the top-down schedule, the span fits, the replacement block.
final class LayerCollapseTests: XCTestCase {
    typealias Fixture = RemoveLayersTests

    func testTheMergeAddsEveryLaterBlocksDifferenceToTheBaseAndKeepsItsNorms() throws {
        let dense = Fixture.model()
        let (base, others) = (dense.blocks[1], [dense.blocks[2], dense.blocks[3]])
        let merged = try LayerMerge.merge(base, index: 1, with: others)
        for name in ["attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight", "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"] {
            XCTAssertEqual(merged.parameters[name]!.shape, base.parameters[name]!.shape)
            let (t, a, b, m) = (base.parameters[name]!.scalars, others[0].parameters[name]!.scalars, others[1].parameters[name]!.scalars,
                                merged.parameters[name]!.scalars)
            for i in t.indices { XCTAssertEqual(m[i], t[i] + (a[i] - t[i]) + (b[i] - t[i]), accuracy: 1e-5, "\(name)[\(i)]") }
        }
        XCTAssertEqual(merged.parameters["attn_norm.weight"], base.parameters["attn_norm.weight"])
        XCTAssertEqual(merged.parameters["mlp_norm.weight"], base.parameters["mlp_norm.weight"])
        var broken = others[1]
        broken.parameters["mlp.up.weight"] = Tensor(zeros: [3, 3])
        XCTAssertThrowsError(try LayerMerge.merge(base, index: 1, with: [others[0], broken])) { error in
            XCTAssertEqual("\(error)", "laco: block 3 has no 'mlp.up.weight' of shape \(base.parameters["mlp.up.weight"]!.shape) to merge into block 1")
        }
    }

    func testLacoMergesFromTheTopDownUntilTheLayersAreGoneAndReportsEachSimilarity() throws {
        let dense = Fixture.model()
        let (model, report) = try Fixture.run([("layers", "3"), ("merge", "2"), ("interval", "1"), ("threshold", "-1")], pass: "laco", on: dense)
        XCTAssertEqual(model.blocks.count, 3)
        XCTAssertEqual(Array(report.notes.prefix(3).map { $0.prefix(31) }),
                       ["merged original blocks 4…5 into", "merged original blocks 3…5 into", "merged original blocks 2…5 into"])
        XCTAssertEqual(report.metrics["blocks_removed"], 3)
        XCTAssertEqual(report.metrics["trials"], 3)
        XCTAssertEqual(model.blocks[0].parameters, dense.blocks[0].parameters, "blocks below the merges are untouched")
        XCTAssertEqual(model.blocks[1].parameters, dense.blocks[1].parameters)

        // The first trial's similarity by hand: blocks 4 and 5 merged, final normed states against the dense model's,
        // one cosine per window over all its tokens and units, averaged.
        var candidate = dense
        candidate.blocks[4] = try LayerMerge.merge(dense.blocks[4], index: 4, with: [dense.blocks[5]])
        candidate.blocks.remove(at: 5)
        let calibration = Fixture.calibration(dense)
        func finals(_ m: Model) throws -> Tensor { ModelRunner(model: m).finalNorm(try Fixture.boundaries(m, calibration).last!) }
        let (a, b) = (try finals(dense).scalars, try finals(candidate).scalars)
        let width = calibration.length * dense.config.hiddenSize
        let perWindow = (0..<calibration.windows.count).map { w -> Double in
            let x = (w * width..<(w + 1) * width).map { Double(a[$0]) }, y = (w * width..<(w + 1) * width).map { Double(b[$0]) }
            return zip(x, y).map(*).reduce(0, +) / (x.map { $0 * $0 }.reduce(0, +) * y.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
        XCTAssertEqual(report.metrics["similarity.4"] ?? .nan, perWindow.reduce(0, +) / Double(perWindow.count), accuracy: 1e-6)
    }

    func testLacoKeepsNoMergeThatLeavesTheSimilarityAtOrBelowTheThreshold() throws {
        let dense = Fixture.model()
        let (model, report) = try Fixture.run([("layers", "2"), ("merge", "3"), ("threshold", "1")], pass: "laco", on: dense)
        XCTAssertEqual(model.blocks.map(\.parameters), dense.blocks.map(\.parameters))
        XCTAssertEqual(report.metrics["blocks_removed"], 0)
        // Bases 3, 2, 1, 0 tried (each rejection moves one block down), each merging two blocks.
        XCTAssertEqual(report.metrics["trials"], 4)
        XCTAssertEqual(report.notes, ["stopped after removing 0 of 2 blocks: no further merge kept the similarity above 1.0"])
    }

    func testLacoStaysInsideItsRangeEvenWhenAMergeIsLargerThanTheRange() throws {
        let dense = Fixture.model()
        let (model, report) = try Fixture.run([("layers", "1"), ("merge", "4"), ("lowest", "1"), ("highest", "2"), ("threshold", "-1")],
                                              pass: "laco", on: dense)
        XCTAssertEqual(model.blocks.count, 5)
        XCTAssertEqual(report.notes.first.map { String($0.prefix(31)) }, "merged original blocks 1…2 into")
    }

    func testLacoOfZeroLayersIsTheIdentity() throws {
        let dense = Fixture.model()
        let (model, report) = try Fixture.run([("layers", "0")], pass: "laco", fit: FitSpec(method: .lstsq), on: dense)
        XCTAssertEqual(model.blocks.map(\.parameters), dense.blocks.map(\.parameters))
        XCTAssertEqual(report.notes, [])
    }

    func testEveryMergedBlockIsFittedToItsSpan() throws {
        let dense = Fixture.model()
        for fit in [FitSpec(method: .lstsq), FitSpec(method: .regional, steps: 20, learningRate: 1e-3, batch: 3)] {
            let (model, report) = try Fixture.run([("layers", "3"), ("merge", "2"), ("interval", "2"), ("threshold", "-1")], pass: "laco", fit: fit, on: dense)
            XCTAssertEqual(model.blocks.count, 3)
            // Merges at 4 (4…5), then 2 (2…3): two stand-ins, then base 0 merges 0…1 for the last block.
            XCTAssertEqual(report.notes.filter { $0.contains("stands for") }.map { $0.prefix(38) },
                           ["block 0 stands for original blocks 0…1", "block 1 stands for original blocks 2…3", "block 2 stands for original blocks 4…5"])
            XCTAssertLessThan(report.errorAfterFit!, report.errorAfterCut!, "\(fit.method)")
        }
    }

    func testReplaceSpanPutsOneAttentionFreeMLPBlockInPlaceOfTheSpan() throws {
        let dense = Fixture.model()
        let (model, report) = try Fixture.run([("count", "3"), ("start", "1")], pass: "replace-span", on: dense)
        XCTAssertEqual(model.blocks.count, 4)
        XCTAssertNil(LlamaBlock.attentionSizes(of: model.blocks[1]))
        let shape = try model.blockShapes()[1]
        XCTAssertNil(shape.attention)
        XCTAssertEqual(shape.ffn, .dense(width: LlamaBlock.ffnWidth(of: dense.blocks[3])!))
        for name in ["mlp_norm.weight", "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"] {
            XCTAssertEqual(model.blocks[1].parameters[name], dense.blocks[3].parameters[name], "no fit: block 3's MLP as it was")
        }
        XCTAssertEqual([0, 2, 3].map { model.blocks[$0].parameters }, [0, 4, 5].map { dense.blocks[$0].parameters })
        XCTAssertEqual(report.notes.first, "replaced blocks 1…3 by one attention-free MLP block (from block 3's MLP)")
        XCTAssertNil(report.metrics["score.0"], "an explicit start measures nothing")
    }

    func testReplaceSpanChoosesTheClosestSpanAndItsFitLowersTheSpanError() throws {
        let dense = Fixture.model()
        let scores = try Fixture.run([("method", "angular-span"), ("count", "2")], on: dense).1.metrics
        for fit in [FitSpec(method: .lstsq), FitSpec(method: .regional, steps: 20, learningRate: 1e-3, batch: 3)] {
            let (model, report) = try Fixture.run([("count", "2")], pass: "replace-span", fit: fit, on: dense)
            XCTAssertEqual(model.blocks.count, 5)
            for l in 0...4 { XCTAssertEqual(report.metrics["score.\(l)"], scores["score.\(l)"], "the same angular distances as remove-layers") }
            let start = (0...4).min { (scores["score.\($0)"]!, $0) < (scores["score.\($1)"]!, $1) }!
            XCTAssertEqual(report.notes.first, "replaced blocks \(start)…\(start + 1) by one attention-free MLP block (from block \(start + 1)'s MLP)")
            XCTAssertLessThan(report.errorAfterFit!, report.errorAfterCut!, "\(fit.method)")
        }
    }

    func testBadOptionsAreRefusedByName() throws {
        let registry = try BuiltinPasses.registry()
        let dense = Fixture.model()
        func problems(_ pass: String, _ options: [(String, String)]) -> [String] { Fixture.problems(options, pass: pass, registry: registry, model: dense) }
        XCTAssertEqual(problems("laco", [("layers", "3")]), [])
        XCTAssertTrue(problems("laco", [("merge", "1")]).contains { $0.contains("laco.merge: must be at least 2") })
        XCTAssertTrue(problems("laco", [("interval", "0")]).contains { $0.contains("laco.interval: must be at least 1") })
        XCTAssertTrue(problems("laco", [("threshold", "2")]).contains { $0.contains("laco.threshold: must be in [-1, 1]") })
        XCTAssertTrue(problems("laco", [("layers", "6")]).contains { $0.contains("laco.layers: 6 blocks cannot go from the merge range 0…5 (at most 5)") })
        XCTAssertTrue(problems("laco", [("highest", "7")]).contains { $0.contains("laco.highest: the merge range 0…7 must hold") })
        XCTAssertEqual(problems("replace-span", [("count", "3")]), [])
        XCTAssertTrue(problems("replace-span", [("count", "0")]).contains { $0.contains("replace-span.count: must be at least 1") })
        XCTAssertTrue(problems("replace-span", [("count", "7")]).contains { $0.contains("replace-span.count: the model has only 6 blocks") })
        XCTAssertTrue(problems("replace-span", [("count", "3"), ("start", "4")]).contains { $0.contains("replace-span.start: the span 4…6 runs past") })
        XCTAssertTrue(problems("replace-span", [("kind", "linear")]).contains { $0.contains("replace-span.kind: must be ffn") })
    }
}
