import Foundation
import Lancet
import XCTest

/// The kept units must be exactly the highest-scoring ones, with the scores recomputed here from the
/// block's captured activations (not from the pipeline's Gram statistics).
final class PruneStructuredScoringTests: XCTestCase {
    let calibration = StructuredFixture.calibration(vocabulary: 64)

    /// ‖act_c‖₂ · ‖down[:, c]‖₂ of every channel of block 0, from its captured `act`.
    func channelScores(_ model: Model) throws -> [Double] {
        let block = model.blocks[0]
        let act = try StructuredFixture.values(block, inputs: StructuredFixture.blockZeroInputs(model, calibration), windows: 8, ["act"])["act"]!
        let down = block.parameters["mlp.down.weight"]!
        return (0..<act.shape[1]).map { c in
            let a = (0..<act.shape[0]).reduce(0.0) { $0 + Double(act[$1, c]) * Double(act[$1, c]) }.squareRoot()
            let w = (0..<down.shape[0]).reduce(0.0) { $0 + Double(down[$1, c]) * Double(down[$1, c]) }.squareRoot()
            return a * w
        }
    }

    /// ‖Σ_{h∈heads} attn_h · o_hᵀ‖_F of block 0 for each set of query heads, from its captured `attn`.
    func headSetScores(_ model: Model, _ sets: [[Int]]) throws -> [Double] {
        let block = model.blocks[0]
        let attn = try StructuredFixture.values(block, inputs: StructuredFixture.blockZeroInputs(model, calibration), windows: 8, ["attn"])["attn"]!
        let o = block.parameters["attn.o.weight"]!
        let d = LlamaBlock.attentionSizes(of: block)!.headDimensions
        return sets.map { heads in
            var total = 0.0
            for t in 0..<attn.shape[0] {
                for r in 0..<o.shape[0] {
                    var y = 0.0
                    for h in heads { for j in (h * d)..<((h + 1) * d) { y += Double(attn[t, j]) * Double(o[r, j]) } }
                    total += y * y
                }
            }
            return total.squareRoot()
        }
    }

    func testKeptChannelsAreExactlyTheHighestScoring() throws {
        for sparsity in ["0.1", "0.3", "0.6"] {
            var model = StructuredFixture.model(seed: 5)
            let dense = model
            try StructuredFixture.run(&model, ["sparsity": sparsity, "channel_multiple": "1"], targets: ["blocks.0.mlp.*"], calibration: calibration)
            let kept = StructuredFixture.matchRows(model.blocks[0].parameters["mlp.gate.weight"]!, in: dense.blocks[0].parameters["mlp.gate.weight"]!)
            XCTAssertLessThan(kept.count, 96)
            XCTAssertEqual(kept, StructuredFixture.top(kept.count, of: try channelScores(dense)), "sparsity \(sparsity)")
            XCTAssertEqual(model.blocks[1].parameters["mlp.gate.weight"]!, dense.blocks[1].parameters["mlp.gate.weight"]!, "block 1 is not targeted")
        }
    }

    func testKeptKVGroupsAreExactlyTheHighestScoring() throws {
        var model = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 4, ffn: 64, seed: 6)
        let dense = model
        try StructuredFixture.run(&model, ["sparsity": "0.5", "heads": "kv-groups"], targets: ["blocks.0.attn.*"], calibration: calibration)
        let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: model.blocks[0]))
        XCTAssertEqual(a.kvHeads, 2)
        let kvRows = StructuredFixture.matchRows(model.blocks[0].parameters["attn.k.weight"]!, in: dense.blocks[0].parameters["attn.k.weight"]!)
        let kept = (0..<a.kvHeads).map { kvRows[$0 * 8] / 8 }
        let scores = try headSetScores(dense, (0..<4).map { [2 * $0, 2 * $0 + 1] })
        XCTAssertEqual(kept, StructuredFixture.top(2, of: scores))
    }

    func testKeptQueryHeadsInEvenModeAreTheHighestScoringOfEachGroup() throws {
        var model = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 2, ffn: 64, seed: 7)
        let dense = model
        try StructuredFixture.run(&model, ["sparsity": "0.4", "heads": "even"], targets: ["blocks.0.attn.*"], calibration: calibration)
        let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: model.blocks[0]))
        XCTAssertLessThan(a.heads, 8)
        let qRows = StructuredFixture.matchRows(model.blocks[0].parameters["attn.q.weight"]!, in: dense.blocks[0].parameters["attn.q.weight"]!)
        let kept = (0..<a.heads).map { qRows[$0 * 8] / 8 }
        let scores = try headSetScores(dense, (0..<8).map { [$0] })
        let perGroup = a.heads / 2
        for g in 0..<2 {
            let group = Array((g * 4)..<((g + 1) * 4))
            XCTAssertEqual(Array(kept[(g * perGroup)..<((g + 1) * perGroup)]), StructuredFixture.top(perGroup, of: group.map { scores[$0] }).map { group[$0] })
        }
    }

    func testTaylorWeightAddsTheRescaledFirstOrderTermToChannelScores() throws {
        var model = StructuredFixture.model(seed: 8)
        let dense = model
        let lambda = 3.0
        try StructuredFixture.run(&model, ["sparsity": "0.3", "channel_multiple": "1", "taylor_weight": "\(lambda)"], targets: ["blocks.0.mlp.*"],
                                  calibration: calibration)
        // Regional gradient: per weight, RMS over windows of ∂‖block(X_w)‖₂/∂w.
        let block = dense.blocks[0]
        let inputs = try StructuredFixture.blockZeroInputs(dense, calibration)
        var squares: [String: [Double]] = [:]
        for w in 0..<8 {
            let x = inputs.slicingRows((w * 64)..<((w + 1) * 64))
            let context = ExecutionContext(batch: 1, length: 64)
            let forward = try BlockExecutor.forward(block, input: x, context: context, keepValues: true)
            let norm = forward.output.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let dy = Tensor(shape: forward.output.shape, forward.output.scalars.map { Float(Double($0) / norm) })
            let grads = try BlockExecutor.backward(block, values: forward.values, outputGradient: dy, context: context).parameters
            for name in ["mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"] {
                let g = grads[name]!.scalars
                squares[name] = zip(squares[name] ?? Array(repeating: 0, count: g.count), g).map { $0 + Double($1) * Double($1) }
            }
        }
        func term(_ name: String, _ index: Int) -> Double {
            let w = block.parameters[name]!.scalars
            return (squares[name]![index] / 8).squareRoot() * Double(abs(w[index]))
        }
        let h = 48, f = 96
        let taylor = (0..<f).map { c in
            (0..<h).reduce(0.0) { $0 + term("mlp.gate.weight", c * h + $1) + term("mlp.up.weight", c * h + $1) + term("mlp.down.weight", $1 * f + c) }
        }
        let activation = try channelScores(dense)
        let scale = lambda * activation.reduce(0, +) / taylor.reduce(0, +)
        let scores = zip(activation, taylor).map { $0 + scale * $1 }
        let kept = StructuredFixture.matchRows(model.blocks[0].parameters["mlp.gate.weight"]!, in: block.parameters["mlp.gate.weight"]!)
        XCTAssertEqual(kept, StructuredFixture.top(kept.count, of: scores))
        XCTAssertNotEqual(kept, StructuredFixture.top(kept.count, of: activation), "the Taylor term should change the ranking of this seed")
    }

    func testUnsetAttentionShareSplitsTheBudgetByScorePerParameter() throws {
        // Scaling block 0's down projection up makes every channel look important, so the budget goes to heads.
        var model = StructuredFixture.model(seed: 9)
        model.blocks[0].parameters["mlp.down.weight"] = Tensor(shape: [48, 96], model.blocks[0].parameters["mlp.down.weight"]!.scalars.map { $0 * 100 })
        var tilted = model
        try StructuredFixture.run(&tilted, ["sparsity": "0.2", "channel_multiple": "1"], targets: ["blocks.0.*"], calibration: calibration)
        XCTAssertEqual(LlamaBlock.attentionSizes(of: tilted.blocks[0])?.kvHeads, 1)
        // ... and scaling attn.o up sends it to channels.
        model = StructuredFixture.model(seed: 9)
        model.blocks[0].parameters["attn.o.weight"] = Tensor(shape: [48, 48], model.blocks[0].parameters["attn.o.weight"]!.scalars.map { $0 * 100 })
        try StructuredFixture.run(&model, ["sparsity": "0.2", "channel_multiple": "1"], targets: ["blocks.0.*"], calibration: calibration)
        XCTAssertEqual(LlamaBlock.attentionSizes(of: model.blocks[0])?.kvHeads, 2)
        XCTAssertLessThan(LlamaBlock.ffnWidth(of: model.blocks[0])!, 96)
    }
}
