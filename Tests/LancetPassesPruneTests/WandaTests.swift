import Foundation
import Lancet
@testable import LancetPassesPrune
@testable import LancetSurgery
import XCTest

/// Wanda: the mask is the |W|·‖X‖ ranking, computed here independently from the captured activations.
final class WandaTests: XCTestCase {
    static var fixtures: [PruneFixture] {
        var wide = TinyLlama.Sizes()
        wide.hidden = 64
        wide.ffn = 160
        wide.blocks = 3
        return [PruneFixture(seed: 1), PruneFixture(wide, seed: 2, windows: 3, length: 20)]
    }

    /// ‖X_j‖₂ per column, in Double, from the raw activations.
    static func norms(_ x: Tensor) -> [Float] {
        let (t, c) = (x.shape[0], x.shape[1])
        let s = x.scalars
        return (0..<c).map { j in Float((0..<t).reduce(0.0) { $0 + Double(s[$1 * c + j]) * Double(s[$1 * c + j]) }.squareRoot()) }
    }

    /// |W_ij|·‖X_j‖ for a weight and its layer input, computed without the pass's code.
    static func referenceScores(_ w: Tensor, _ x: Tensor) -> [Float] {
        let n = norms(x), (rows, cols) = (w.shape[0], w.shape[1]), ws = w.scalars
        return (0..<(rows * cols)).map { abs(ws[$0]) * n[$0 % cols] }
    }

    func testWandaPrunesTheLowestWeightTimesInputNormOfEachRow() throws {
        for fx in Self.fixtures {
            for sparsity in [0.25, 0.5, 0.7] {
                let pass = try makePass(WandaPass.self, [("sparsity", "\(sparsity)")])
                for b in fx.model.blocks.indices {
                    var block = fx.model.blocks[b]
                    let report = try pass.apply(to: &block, context: try fx.context(block: b, pass: pass))
                    try Verifier.verify(block, index: b, hiddenSize: fx.model.config.hiddenSize)
                    let linears = block.nodes(of: LinearOp.self)
                    let x = try fx.captured(block: b, Set(linears.map { $0.node.inputs[0] }))
                    for (node, op) in linears {
                        let w = fx.model.blocks[b].parameters[op.weight!]!, mask = block.masks[op.weight!]!
                        let (rows, cols) = (w.shape[0], w.shape[1]), k = Int(Double(cols) * sparsity)
                        XCTAssertEqual(prunedPerRow(mask), Array(repeating: k, count: rows), "\(node.name) per-row count")
                        let expected = lowestPerRow(Self.referenceScores(w, x[node.inputs[0]]!), rows: rows, cols: cols, k: k)
                        XCTAssertEqual(prunedSet(mask), expected, "block \(b) \(node.name) at \(sparsity)")
                    }
                    XCTAssertEqual(report.metrics["sparsity"]!, sparsity, accuracy: 0.02)
                }
            }
        }
    }

    func testWandaLayerScopePrunesTheLowestScoresOfTheWholeMatrix() throws {
        let fx = Self.fixtures[0]
        let pass = try makePass(WandaPass.self, [("sparsity", "0.6"), ("scope", "layer")])
        var block = fx.model.blocks[1]
        _ = try pass.apply(to: &block, context: try fx.context(block: 1, pass: pass))
        let linears = block.nodes(of: LinearOp.self)
        let x = try fx.captured(block: 1, Set(linears.map { $0.node.inputs[0] }))
        for (node, op) in linears {
            let w = fx.model.blocks[1].parameters[op.weight!]!
            let scores = Self.referenceScores(w, x[node.inputs[0]]!)
            let k = Int(Double(scores.count) * 0.6)
            let expected = Set(scores.indices.sorted { scores[$0] < scores[$1] }.prefix(k))
            XCTAssertEqual(prunedSet(block.masks[op.weight!]!), expected, node.name)
        }
    }

    func testWandaNOfMKeepsExactlyNOfEveryMAndTheirBestScores() throws {
        for fx in Self.fixtures {
            for (n, m) in [(2, 4), (4, 8), (1, 4), (3, 8)] {
                let pass = try makePass(WandaPass.self, [("pattern", "\(n):\(m)")])
                for b in fx.model.blocks.indices {
                    var block = fx.model.blocks[b]
                    _ = try pass.apply(to: &block, context: try fx.context(block: b, pass: pass))
                    try Verifier.verify(block, index: b, hiddenSize: fx.model.config.hiddenSize)
                    let linears = block.nodes(of: LinearOp.self)
                    let x = try fx.captured(block: b, Set(linears.map { $0.node.inputs[0] }))
                    for (node, op) in linears {
                        let mask = block.masks[op.weight!]!
                        assertNOfM(mask, n: n, m: m, "block \(b) \(node.name) \(n):\(m)")
                        let w = fx.model.blocks[b].parameters[op.weight!]!
                        let scores = Self.referenceScores(w, x[node.inputs[0]]!)
                        let cols = w.shape[1]
                        var expected = Set<Int>()
                        for r in 0..<w.shape[0] {
                            for g in stride(from: 0, to: cols, by: m) {
                                let group = (g..<(g + m)).map { r * cols + $0 }.sorted { scores[$0] < scores[$1] }
                                expected.formUnion(group.prefix(m - n))
                            }
                        }
                        XCTAssertEqual(prunedSet(mask), expected, "block \(b) \(node.name) \(n):\(m)")
                    }
                }
            }
        }
    }

    func testWandaKeepsWhatAnEarlierCutPruned() throws {
        let fx = Self.fixtures[0]
        let magnitude = try makePass(MagnitudePass.self, [("sparsity", "0.3")])
        let wanda = try makePass(WandaPass.self, [("sparsity", "0.5")])
        var block = fx.model.blocks[0]
        _ = try magnitude.apply(to: &block, context: try fx.context(block: 0, pass: magnitude))
        let before = block.masks
        _ = try wanda.apply(to: &block, context: try fx.context(block: 0, pass: wanda))
        try Verifier.verify(block, index: 0, hiddenSize: fx.model.config.hiddenSize)
        for (name, mask) in before {
            XCTAssertTrue(prunedSet(mask).isSubset(of: prunedSet(block.masks[name]!)), name)
        }
    }

    func testWandaRejectsBadOptionsByName() {
        for (options, key) in [([("sparsity", "1.0")], "sparsity"), ([("pattern", "4:2")], "pattern"), ([("scope", "column")], "scope"),
                               ([("allocation", "owl"), ("pattern", "2:4")], "allocation"), ([("allocation", "best")], "allocation"),
                               ([("allocation", "owl"), ("sparsity", "0.9")], "owl_lambda")] {
            XCTAssertThrowsError(try makePass(WandaPass.self, options), "\(options)") { error in
                XCTAssertTrue("\(error)".contains("wanda.\(key)"), "\(error)")
            }
        }
    }

    func testPruneTableRegistersEveryPassOnceUnderItsRecipeName() throws {
        let registry = try PassRegistry(PrunePasses.all)
        XCTAssertEqual(registry.all.map(\.name), ["magnitude", "prune-structured", "sparsegpt", "wanda", "wanda++"])
        for d in registry.all { XCTAssertEqual(d.scope, "block", d.name) }
        // α is a number (a Double), so its default reads as one: "100.0", not the integer "100".
        let alpha = registry.descriptor("wanda++")!.options.first { $0.key == "alpha" }
        XCTAssertEqual(alpha?.type, "number")
        XCTAssertEqual(alpha?.defaultValue, "100.0")
        let taylor = registry.descriptor("prune-structured")!.options.first { $0.key == "taylor_weight" }
        XCTAssertEqual(taylor?.type, "number")
        XCTAssertEqual(taylor?.defaultValue, "0.0")
    }
}
