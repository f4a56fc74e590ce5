import LancetIR
import LancetRuntime
import LancetTensor
import XCTest

/// Each op carries a NaN in an input or a parameter to exactly the outputs that depend on it, and no
/// further: a NaN is neither swallowed (a masked softmax, a maximum that skips it) nor smeared.
final class OpNaNPropagationTests: XCTestCase {
    let noParameters = Block(output: "x", nodes: [], parameters: [:])

    /// The [row, column] of every NaN of a matrix, row-major.
    func nanCells(_ t: Tensor) -> [[Int]] {
        var cells: [[Int]] = []
        for i in 0..<t.shape[0] { for j in 0..<t.shape[1] where t[i, j].isNaN { cells.append([i, j]) } }
        return cells
    }

    /// Every cell of `rows` × `columns`, row-major.
    func cells(_ rows: some Sequence<Int>, _ columns: some Sequence<Int>) -> [[Int]] {
        rows.flatMap { i in columns.map { [i, $0] } }
    }

    // MARK: attention

    /// q, k, v of one sequence of `length` tokens, seeded.
    func qkv(length: Int, heads: Int, kvHeads: Int, d: Int, seed: UInt64) -> (Tensor, Tensor, Tensor) {
        var g = SeededGenerator(seed: seed)
        return (Tensor.randomNormal(shape: [length, heads * d], std: 1, generator: &g),
                Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g),
                Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g))
    }

    func testAttentionWithANaNQueryGivesNaNInThatTokenAndHeadOnly() throws {
        let heads = 4, kvHeads = 2, d = 8
        for (length, token, head) in [(20, 0, 1), (20, 13, 3), (300, 290, 0)] {
            var (q, k, v) = qkv(length: length, heads: heads, kvHeads: kvHeads, d: d, seed: UInt64(length))
            q[token, head * d + 5] = .nan
            let out = try AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d)
                .forward([q, k, v], parameters: noParameters, context: ExecutionContext(batch: 1, length: length))[0]
            XCTAssertEqual(nanCells(out), cells([token], (head * d)..<((head + 1) * d)), "length \(length) token \(token) head \(head)")
        }
    }

    func testAttentionWithAllNaNQueriesIsAllNaNNotZeros() throws {
        let heads = 4, kvHeads = 2, d = 8, length = 20
        var (q, k, v) = qkv(length: length, heads: heads, kvHeads: kvHeads, d: d, seed: 3)
        q.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let out = try AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d)
            .forward([q, k, v], parameters: noParameters, context: ExecutionContext(batch: 1, length: length))[0]
        XCTAssertTrue(out.scalars.allSatisfy(\.isNaN), "NaN scores must not read as a fully masked row")
    }

    func testAttentionWithANaNKeyGivesNaNInEveryLaterQueryOfItsGroupWithinTheWindow() throws {
        let heads = 4, kvHeads = 2, d = 8, length = 30, key = 9, group = 1
        for window in [nil, 6 as Int?] {
            var (q, k, v) = qkv(length: length, heads: heads, kvHeads: kvHeads, d: d, seed: 4)
            k[key, group * d + 2] = .nan
            let out = try AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d, window: window)
                .forward([q, k, v], parameters: noParameters, context: ExecutionContext(batch: 1, length: length))[0]
            let seeing = (key..<length).filter { window == nil || $0 - key < window! }
            XCTAssertEqual(nanCells(out), cells(seeing, (2 * d)..<(4 * d)), "window \(String(describing: window))")
        }
    }

    /// Masked probabilities are exact zeros multiplied into the values of a whole row block (the queries that share
    /// one pass over the keys), and 0·NaN is NaN: a NaN value reaches every query of its row block (earlier ones
    /// too), in its column and KV group, and no query of an earlier block.
    func testAttentionWithANaNValueGivesNaNInThatColumnOfItsGroupForEveryQueryOfItsRowBlock() throws {
        let heads = 4, kvHeads = 2, d = 8, block = attentionRowBlock
        for (length, token) in [(30, 4), (queryTileRows + 44, queryTileRows + 15), (300, 270)] {
            let column = 3
            var (q, k, v) = qkv(length: length, heads: heads, kvHeads: kvHeads, d: d, seed: 5)
            v[token, column] = .nan  // KV head 0: query heads 0 and 1
            let out = try AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d)
                .forward([q, k, v], parameters: noParameters, context: ExecutionContext(batch: 1, length: length))[0]
            XCTAssertEqual(nanCells(out), cells((token / block * block)..<length, [column, d + column]), "length \(length)")
        }
    }

    func testAttentionWithANaNInOneSequenceLeavesTheOtherSequenceOfTheBatchFinite() throws {
        let heads = 2, kvHeads = 1, d = 8, length = 12
        var g = SeededGenerator(seed: 6)
        var q = Tensor.randomNormal(shape: [2 * length, heads * d], std: 1, generator: &g)
        let k = Tensor.randomNormal(shape: [2 * length, kvHeads * d], std: 1, generator: &g)
        let v = Tensor.randomNormal(shape: [2 * length, kvHeads * d], std: 1, generator: &g)
        q[length + 2, 0] = .nan
        let out = try AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d)
            .forward([q, k, v], parameters: noParameters, context: ExecutionContext(batch: 2, length: length))[0]
        XCTAssertEqual(nanCells(out), cells([length + 2], 0..<d))
    }

    // MARK: linear, norm, rope, elementwise

    func testLinearWithANaNWeightGivesNaNInThatOutputFeatureOfEveryToken() throws {
        var g = SeededGenerator(seed: 7)
        var w = Tensor.randomNormal(shape: [10, 6], std: 0.5, generator: &g)
        w[4, 5] = .nan
        var x = Tensor.randomNormal(shape: [5, 6], std: 1, generator: &g)
        x[2, 5] = 0  // 0·NaN is NaN: a zero activation does not hide the weight
        let block = Block(output: "y", nodes: [], parameters: ["proj.weight": w])
        let y = try LinearOp(prefix: "proj").forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 5))[0]
        XCTAssertEqual(nanCells(y), cells(0..<5, [4]))
    }

    func testLinearWithANaNInputOrBiasGivesNaNInThatTokenOrFeature() throws {
        var g = SeededGenerator(seed: 8)
        var bias = Tensor.randomNormal(shape: [10], std: 0.5, generator: &g)
        bias[flat: 7] = .nan
        let block = Block(output: "y", nodes: [], parameters: [
            "proj.weight": Tensor.randomNormal(shape: [10, 6], std: 0.5, generator: &g), "proj.bias": bias,
        ])
        var x = Tensor.randomNormal(shape: [5, 6], std: 1, generator: &g)
        x[3, 1] = .nan
        let y = try LinearOp(prefix: "proj", hasBias: true).forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 5))[0]
        XCTAssertEqual(Set(nanCells(y)), Set(cells([3], 0..<10) + cells(0..<5, [7])))
    }

    func testLowRankLinearWithANaNFactorGivesNaNInEveryOutputOfEveryToken() throws {
        var g = SeededGenerator(seed: 9)
        var a = Tensor.randomNormal(shape: [3, 6], std: 0.5, generator: &g)
        a[1, 0] = .nan
        let block = Block(output: "y", nodes: [], parameters: ["proj.a": a, "proj.b": Tensor.randomNormal(shape: [8, 3], std: 0.5, generator: &g)])
        let x = Tensor.randomNormal(shape: [4, 6], std: 1, generator: &g)
        let y = try LinearOp(lowRankPrefix: "proj").forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 4))[0]
        XCTAssertTrue(y.scalars.allSatisfy(\.isNaN))
    }

    func testRMSNormOpWithANaNWeightOrInputGivesNaNInThatFeatureOrToken() throws {
        var g = SeededGenerator(seed: 10)
        var w = Tensor(shape: [12], (0..<12).map { _ in 1 + 0.1 * g.nextNormal() })
        w[flat: 11] = .nan
        var x = Tensor.randomNormal(shape: [4, 12], std: 1, generator: &g)
        x[0, 3] = .nan
        let block = Block(output: "y", nodes: [], parameters: ["norm.weight": w])
        let y = try RMSNormOp(weight: "norm.weight", epsilon: 1e-5).forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 4))[0]
        XCTAssertEqual(Set(nanCells(y)), Set(cells([0], 0..<12) + cells(0..<4, [11])))
    }

    func testRopeOpGivesNaNInTheRotatedPairOfANaN() throws {
        let op = RopeOp(heads: 2, headDimensions: 8, config: RopeConfig(theta: 10000, rotaryDimensions: 8, pairing: .halves))
        var g = SeededGenerator(seed: 11)
        var x = Tensor.randomNormal(shape: [3, 16], std: 1, generator: &g)
        x[2, 8 + 1] = .nan  // head 1, dimension 1: paired with dimension 5
        let y = try op.forward([x], parameters: noParameters, context: ExecutionContext(batch: 1, length: 3))[0]
        XCTAssertEqual(nanCells(y), [[2, 9], [2, 13]])
    }

    func testElementwiseOpsGiveNaNWhereAnOperandIsNaN() throws {
        var g = SeededGenerator(seed: 12)
        var a = Tensor.randomNormal(shape: [3, 20], std: 4, generator: &g)
        let b = Tensor.randomNormal(shape: [3, 20], std: 1, generator: &g)
        a[1, 17] = .nan
        let context = ExecutionContext(batch: 1, length: 3)
        for op in [SiLUOp() as any Op, MulOp(), AddOp()] {
            let inputs = op is SiLUOp ? [a] : [a, b]
            let y = try op.forward(inputs, parameters: noParameters, context: context)[0]
            XCTAssertEqual(nanCells(y), [[1, 17]], "\(type(of: op))")
            let y2 = op is SiLUOp ? nil : try op.forward([b, a], parameters: noParameters, context: context)[0]
            if let y2 { XCTAssertEqual(nanCells(y2), [[1, 17]], "\(type(of: op)), NaN second") }
        }
    }

    // MARK: mixture of experts

    func testMoEWithANaNRouterWeightGivesNaNForEveryToken() throws {
        for normalize in [true, false] {
            var block = MoEFixture.block(experts: 4, topK: 2, normalize: normalize, shared: false, seed: 11)
            block.parameters["moe.router.weight"]![2, 5] = .nan
            var g = SeededGenerator(seed: 13)
            let x = Tensor.randomNormal(shape: [6, MoEFixture.hidden], std: 1, generator: &g)
            let y = try block.node("moe")!.op.forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 6))[0]
            XCTAssertTrue(y.scalars.allSatisfy(\.isNaN), "normalize \(normalize): the router's probabilities are NaN for every token")
        }
    }

    func testMoEWithANaNExpertWeightGivesNaNInTheTokensRoutedToThatExpertOnly() throws {
        let experts = 4, topK = 2, tokens = 12, h = MoEFixture.hidden
        var block = MoEFixture.block(experts: experts, topK: topK, normalize: true, shared: true, seed: 14)
        var g = SeededGenerator(seed: 15)
        let x = Tensor.randomNormal(shape: [tokens, h], std: 1, generator: &g)
        let context = ExecutionContext(batch: 1, length: tokens)
        context.nodeName = "moe"
        let op = block.node("moe")!.op
        _ = try op.forward([x], parameters: block, context: context)
        let chosen = context.routing["moe"]!
        let expert = Int(chosen[0])
        let routed = (0..<tokens).filter { t in chosen[(t * topK)..<((t + 1) * topK)].contains(Int32(expert)) }
        XCTAssertLessThan(routed.count, tokens, "some tokens avoid the expert, so the test can tell them apart")
        block.parameters["moe.experts.\(expert).down.weight"]![7, 0] = .nan
        let y = try op.forward([x], parameters: block, context: context)[0]
        XCTAssertEqual(nanCells(y), cells(routed, [7]))
        block.parameters["moe.shared.up.weight"]![0, 0] = .nan
        let shared = try op.forward([x], parameters: block, context: context)[0]
        XCTAssertTrue(shared.scalars.allSatisfy(\.isNaN), "the shared expert sees every token")
    }

    // MARK: backward

    func testLlamaBlockBackwardWithANaNQueryWeightGivesNaNGradients() throws {
        var block = TinyLlama.make(seed: 16).blocks[0]
        block.parameters["attn.q.weight"]![0, 0] = .nan
        var g = SeededGenerator(seed: 17)
        let x = Tensor.randomNormal(shape: [8, 48], std: 1, generator: &g)
        let context = ExecutionContext(batch: 1, length: 8)
        let forward = try BlockExecutor.forward(block, input: x, context: context, keepValues: true)
        XCTAssertTrue(forward.output.scalars.contains(where: \.isNaN))
        let dy = Tensor.randomNormal(shape: forward.output.shape, std: 1, generator: &g)
        let grads = try BlockExecutor.backward(block, values: forward.values, outputGradient: dy, context: context)
        XCTAssertTrue(grads.input.scalars.contains(where: \.isNaN), "input gradient")
        for name in ["attn.q.weight", "attn.k.weight", "attn.v.weight"] {
            XCTAssertTrue(grads.parameters[name]!.scalars.contains(where: \.isNaN), name)
        }
    }
}
