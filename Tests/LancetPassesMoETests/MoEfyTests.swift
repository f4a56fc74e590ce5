import Foundation
import Lancet
@testable import LancetPassesMoE
import XCTest

/// Dense → mixture of experts: the balanced assignment is optimal, the markers count what they mark, CMoE's carving
/// keeps every channel exactly once in experts of equal size, and the carved mixture computes what its definition says
/// (every expert chosen: the dense MLP; otherwise the shared expert plus the chosen experts, each with weight 1).
final class MoEfyTests: XCTestCase {
    static let dense: Model = {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 2
        return TinyLlama.make(sizes, seed: 31)
    }()

    static func windows(_ count: Int, length: Int = 16, seed: UInt64 = 5) -> [[Int32]] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: dense.config.vocabularySize)) } }
    }

    static func run(_ options: [(String, String)], fit: FitSpec = FitSpec()) throws -> (Model, [PassReport]) {
        var model = dense
        let values = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
        let recipe = Recipe(stages: [Stage(name: "moe", passes: [PassInvocation(name: "moefy", options: values, fit: fit)])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: CalibrationSet(windows: windows(4), seed: 9))
        try Verifier.verify(model)
        return (model, report.passes)
    }

    func testTheBalancedAssignmentIsOptimalAndBalanced() {
        var g = SeededGenerator(seed: 3)
        for (n, k) in [(6, 2), (6, 3), (8, 2), (9, 3)] {
            for _ in 0..<20 {
                let cost = (0..<n).map { _ in (0..<k).map { _ in g.nextIndex(below: 20) } }
                let group = BalancedAssignment.solve(cost: cost, groups: k)
                XCTAssertEqual((0..<k).map { c in group.filter { $0 == c }.count }, Array(repeating: n / k, count: k))
                XCTAssertEqual(BalancedAssignment.totalCost(cost, group), Self.bruteForceMinimum(cost, groups: k), "n \(n) k \(k)")
            }
        }
    }

    /// The least total cost over every balanced assignment, by enumeration.
    static func bruteForceMinimum(_ cost: [[Int]], groups k: Int) -> Int {
        let n = cost.count, capacity = n / k
        var best = Int.max, used = [Int](repeating: 0, count: k)
        func place(_ i: Int, _ total: Int) {
            if i == n { best = min(best, total); return }
            for g in 0..<k where used[g] < capacity {
                used[g] += 1
                place(i + 1, total + cost[i][g])
                used[g] -= 1
            }
        }
        place(0, 0)
        return best
    }

    func testMarkersCountHammingAndMerge() {
        var a = MarkerMatrix(tokens: 70, channels: 3)
        for t in [0, 5, 64, 69] { a.mark(token: t, channel: 1) }
        a.mark(token: 5, channel: 1)
        for t in [5, 66] { a.mark(token: t, channel: 2) }
        XCTAssertEqual(a.counts, [0, 4, 2])
        XCTAssertEqual(a.activeTokens(1), [0, 5, 64, 69])
        XCTAssertEqual(a.hammingDistance(1, 2), 4)
        XCTAssertEqual(a.hammingDistance(0, 2), 2)
        var b = MarkerMatrix(tokens: 2, channels: 3)
        b.mark(token: 1, channel: 0)
        a.merge(b)
        XCTAssertEqual(a.tokens, 72)
        XCTAssertEqual(a.activeTokens(0), [71])
        XCTAssertEqual(a.counts, [1, 4, 2])
        XCTAssertEqual(ActivationMarkers.largestMagnitudes([0.5, -3, 2, 3, -0.1], count: 3), [1, 3, 2], "ties: lower index first")
    }

    func testCMoEPutsTheMostActiveChannelsInTheSharedGroupAndSplitsTheRestEvenly() {
        var markers = MarkerMatrix(tokens: 40, channels: 12)
        var g = SeededGenerator(seed: 8)
        for c in 0..<12 { for t in 0..<40 where g.nextIndex(below: 12) < (c == 7 || c == 2 ? 11 : 3) { markers.mark(token: t, channel: c) } }
        let p = ExpertPartition.cmoe(markers: markers, experts: 5, sharedChannels: 2)
        XCTAssertEqual(Set(p.shared), [2, 7])
        XCTAssertEqual(p.experts.map(\.count), Array(repeating: 2, count: 5))
        XCTAssertEqual((p.shared + p.experts.flatMap { $0 }).sorted(), Array(0..<12))
        for (e, r) in zip(p.experts, p.representatives) { XCTAssertTrue(e.contains(r)) }
    }

    func testEveryExpertChosenReproducesTheDenseMLP() throws {
        let (model, reports) = try Self.run([("experts", "4"), ("top_k", "4"), ("windows", "2"), ("k_act", "3")])
        XCTAssertEqual(reports.count, 2)
        let tokens = Self.windows(1, length: 12, seed: 77)[0]
        let context = ExecutionContext(batch: 1, length: tokens.count)
        let want = try ModelRunner(model: Self.dense).logits(tokens, context: context).scalars
        let got = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        XCTAssertLessThan(zip(want, got).map { abs($0 - $1) }.max()!, 1e-4)
        XCTAssertTrue(model.blocks.allSatisfy { $0.node("mlp.moe")?.op is MoEOp && $0.node("mlp.gate") == nil })
    }

    func testEachTokenGetsTheSharedExpertPlusItsChosenExpertsWithWeightOne() throws {
        let (model, reports) = try Self.run([("experts", "4"), ("shared", "1"), ("top_k", "1"), ("windows", "2"), ("k_act", "3")])
        XCTAssertEqual(reports[0].metrics["active_ffn_share"], 0.5)
        let block = model.blocks[0]
        let op = try XCTUnwrap(block.node("mlp.moe")?.op as? MoEOp)
        XCTAssertEqual(op.experts, 3)
        var g = SeededGenerator(seed: 4)
        let x = Tensor.randomNormal(shape: [5, Self.dense.config.hiddenSize], std: 1, generator: &g)
        let context = ExecutionContext(batch: 1, length: 5)
        context.nodeName = "mlp.moe"
        let y = try op.forward([x], parameters: block, context: context)[0]
        let chosen = try XCTUnwrap(context.routing["mlp.moe"])
        func expert(_ e: Int?, _ row: Tensor) throws -> Tensor {
            let n = op.expertNames(e)
            let gate = matmul(row, block.parameters[n.gate]!, transposeB: true), up = matmul(row, block.parameters[n.up]!, transposeB: true)
            let act = Tensor(shape: gate.shape, zip(gate.scalars, up.scalars).map { $0 / (1 + Foundation.exp(-$0)) * $1 })
            return matmul(act, block.parameters[n.down]!, transposeB: true)
        }
        for t in 0..<5 {
            let row = x.slicingRows(t..<(t + 1))
            var want = try expert(nil, row).scalars
            let e = Int(chosen[t])
            for (i, v) in try expert(e, row).scalars.enumerated() { want[i] += v }
            // The chosen expert has the highest representative-channel score.
            let router = block.parameters["mlp.moe.router.gate.weight"]!, routerUp = block.parameters["mlp.moe.router.up.weight"]!
            let gs = matmul(row, router, transposeB: true).scalars, us = matmul(row, routerUp, transposeB: true).scalars
            let scores = zip(gs, us).map { abs($0 / (1 + Foundation.exp(-$0)) * $1) }
            XCTAssertEqual(scores[e], scores.max()!)
            for (a, b) in zip(y.slicingRows(t..<(t + 1)).scalars, want) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        }
    }

    func testOptionsAreCheckedAndAWidthThatDoesNotSplitIsRefused() throws {
        XCTAssertThrowsError(try Self.run([("experts", "4"), ("top_k", "4"), ("shared", "1")])) { XCTAssertTrue("\($0)".contains("top_k"), "\($0)") }
        XCTAssertThrowsError(try Self.run([("method", "kmeans")])) { XCTAssertTrue("\($0)".contains("cmoe, cluster, cooccurrence, random"), "\($0)") }
        XCTAssertThrowsError(try Self.run([("experts", "5"), ("top_k", "1")])) { XCTAssertTrue("\($0)".contains("not a multiple of 5"), "\($0)") }
        XCTAssertThrowsError(try Self.run([("router", "learned")])) { XCTAssertTrue("\($0)".contains("analytical, centroid, fitted"), "\($0)") }
        XCTAssertThrowsError(try Self.run([("weighting", "softmax")])) { XCTAssertTrue("\($0)".contains("linear router"), "\($0)") }
    }

    /// A mixture's output is its readout features times its down projections side by side (the least-squares fit's model).
    func testTheReadoutFeaturesTimesTheDownProjectionsAreTheMixture() throws {
        let (model, _) = try Self.run([("experts", "4"), ("shared", "1"), ("top_k", "2"), ("router", "fitted"), ("weighting", "softmax"),
                                       ("windows", "2"), ("k_act", "3")])
        let block = model.blocks[1]
        let op = try XCTUnwrap(block.node("mlp.moe")?.op as? MoEOp)
        XCTAssertEqual(op.router, .linear)
        XCTAssertEqual(op.weighting, .softmax)
        var g = SeededGenerator(seed: 8)
        let x = Tensor.randomNormal(shape: [7, Self.dense.config.hiddenSize], std: 1, generator: &g)
        let y = try op.forward([x], parameters: block, context: ExecutionContext(batch: 1, length: 7))[0]
        let z = try op.readoutFeatures(x, parameters: block)
        let w = op.readoutParameters.map { block.parameters[$0]! }
        XCTAssertEqual(z.shape, [7, w.reduce(0) { $0 + $1.shape[1] }])
        var column = 0
        var sum = Tensor(zeros: y.shape)
        for part in w {
            let zPart = BlockSlicing.gather(z, columns: Array(column..<(column + part.shape[1])))
            sum = Tensor(shape: y.shape, zip(sum.scalars, matmul(zPart, part, transposeB: true).scalars).map { $0 + $1 })
            column += part.shape[1]
        }
        for (a, b) in zip(y.scalars, sum.scalars) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    /// `fit: lstsq` refits the mixture's down projections: its objective falls, and so does the block's output error.
    func testTheLeastSquaresFitOfTheDownProjectionsLowersTheBlockError() throws {
        let options = [("experts", "4"), ("shared", "1"), ("top_k", "1"), ("windows", "2"), ("k_act", "3")]
        let (_, plain) = try Self.run(options)
        let (fitted, reports) = try Self.run(options, fit: FitSpec(method: .lstsq))
        for (p, r) in zip(plain, reports) {
            let before = try XCTUnwrap(r.fitObjectiveBefore), after = try XCTUnwrap(r.fitObjectiveAfter)
            XCTAssertLessThan(after, before * 0.9, "block \(r.block ?? -1)")
            // Block 0 sees the same inputs in both runs (later blocks see the fitted block 0's outputs).
            if r.block == 0 { XCTAssertEqual(try XCTUnwrap(r.errorAfterCut), try XCTUnwrap(p.errorAfterFit), accuracy: 1e-9) }
            XCTAssertLessThan(try XCTUnwrap(r.errorAfterFit), try XCTUnwrap(r.errorAfterCut), "block \(r.block ?? -1)")
        }
        XCTAssertNotEqual(fitted.blocks[0].parameters["mlp.moe.shared.down.weight"], try Self.run(options).0.blocks[0].parameters["mlp.moe.shared.down.weight"])
    }

    /// The learned routers send calibration tokens to the expert that helps them most more often than CMoE's analytical
    /// router does, and the fitted one lowers the block error.
    func testLearnedRoutersPickTheExpertsThatMatterMore() throws {
        func agreement(_ router: String) throws -> (Double, Double) {
            let (model, reports) = try Self.run([("experts", "4"), ("top_k", "1"), ("router", router), ("windows", "4"), ("k_act", "3")])
            let block = model.blocks[0]
            let op = try XCTUnwrap(block.node("mlp.moe")?.op as? MoEOp)
            let tokens = Self.windows(4).joined().map { $0 }
            let x = try ModelRunner(model: Self.dense).embed(tokens)
            let value = try XCTUnwrap(block.node("mlp.moe")?.inputs[0])
            let mlpInput = try BlockExecutor.forward(block, input: x, context: ExecutionContext(batch: 4, length: 16), capture: [value]).values[value]!
            let context = ExecutionContext(batch: 4, length: 16)
            context.nodeName = "mlp.moe"
            _ = try op.forward([mlpInput], parameters: block, context: context)
            let chosen = try XCTUnwrap(context.routing["mlp.moe"])
            let outputs = try (0..<op.experts).map { try op.expertOutput(mlpInput, expert: $0, parameters: block) }
            let h = mlpInput.shape[1]
            var hits = 0
            for t in 0..<mlpInput.shape[0] {
                let ys = outputs.map { Array($0.scalars[(t * h)..<((t + 1) * h)]) }
                let r = (0..<h).map { i in ys.reduce(Float(0)) { $0 + $1[i] } }
                let benefit = ys.map { y in zip(r, y).reduce(Float(0)) { $0 + 2 * $1.0 * $1.1 } - y.reduce(Float(0)) { $0 + $1 * $1 } }
                if benefit[Int(chosen[t])] == benefit.max()! { hits += 1 }
            }
            return (Double(hits) / Double(mlpInput.shape[0]), try XCTUnwrap(reports[0].errorAfterFit))
        }
        let analytical = try agreement("analytical"), fitted = try agreement("fitted"), centroid = try agreement("centroid")
        XCTAssertGreaterThan(fitted.0, analytical.0)
        XCTAssertGreaterThan(centroid.0, analytical.0)
        XCTAssertLessThan(fitted.1, analytical.1)
    }

    /// Synthetic markers with structure: 4 planted groups of 6 channels, each active together on its own tokens.
    static func plantedMarkers() -> MarkerMatrix {
        var markers = MarkerMatrix(tokens: 400, channels: 26)
        var g = SeededGenerator(seed: 12)
        for t in 0..<400 {
            let group = t % 4
            for c in 0..<26 where g.nextIndex(below: 100) < (c >= 24 ? 90 : (c % 4 == group ? 70 : 5)) { markers.mark(token: t, channel: c) }
        }
        return markers
    }

    /// Balanced k-means and the co-activation partition keep every channel once in equal experts and do at least as
    /// well as CMoE's one round on their own objectives; on planted groups of co-active channels both recover them.
    func testClusterAndCooccurrencePartitionsAreBalancedAndImproveOnOneRound() {
        let markers = Self.plantedMarkers()
        let first = ExpertPartition.cmoe(markers: markers, experts: 4, sharedChannels: 2)
        XCTAssertEqual(Set(first.shared), [24, 25])
        func l1ToCentroids(_ p: ExpertPartition) -> Double {
            p.experts.reduce(0.0) { total, members in
                var mean = [Double](repeating: 0, count: markers.tokens)
                for c in members { for t in markers.activeTokens(c) { mean[t] += 1 / Double(members.count) } }
                return total + members.reduce(0.0) { sum, c in
                    let active = Set(markers.activeTokens(c))
                    return sum + (0..<markers.tokens).reduce(0.0) { $0 + abs((active.contains($1) ? 1 : 0) - mean[$1]) }
                }
            }
        }
        func coactivation(_ p: ExpertPartition) -> Int {
            p.experts.reduce(0) { total, m in total + m.reduce(0) { s, a in s + m.reduce(0) { $0 + (a == $1 ? 0 : markers.coactivations(a, $1)) } } }
        }
        let cluster = ExpertPartition.cluster(markers: markers, experts: 4, sharedChannels: 2)
        let graph = ExpertPartition.cooccurrence(markers: markers, experts: 4, sharedChannels: 2)
        let planted = Set((0..<4).map { g in Set((0..<24).filter { $0 % 4 == g }) })
        for p in [cluster, graph] {
            XCTAssertEqual(p.shared, first.shared)
            XCTAssertEqual(p.experts.map(\.count), [6, 6, 6, 6])
            XCTAssertEqual((p.shared + p.experts.flatMap { $0 }).sorted(), Array(0..<26))
            for (e, r) in zip(p.experts, p.representatives) { XCTAssertTrue(e.contains(r)) }
            XCTAssertEqual(Set(p.experts.map(Set.init)), planted)
        }
        XCTAssertLessThanOrEqual(l1ToCentroids(cluster), l1ToCentroids(first) + 1e-9)
        XCTAssertGreaterThanOrEqual(coactivation(graph), coactivation(first))
    }

    /// One expert chosen for every token with weight 1 is the dense MLP, bit for bit.
    func testOneExpertTopOneIsTheDenseMLP() throws {
        let (model, _) = try Self.run([("experts", "1"), ("top_k", "1"), ("windows", "2"), ("k_act", "3")])
        let tokens = Self.windows(1, length: 12, seed: 78)[0]
        let want = try ModelRunner(model: Self.dense).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        let got = try ModelRunner(model: model).logits(tokens, context: ExecutionContext(batch: 1, length: tokens.count)).scalars
        XCTAssertEqual(got, want)
        XCTAssertEqual((model.blocks[0].node("mlp.moe")?.op as? MoEOp)?.experts, 1)
    }

    /// After the down projections are refitted, `fit: lstsq` refits a linear router from the refitted experts' benefits
    /// (`router_rounds`, then the down projections again): the router changes and the block error falls further.
    func testRefittingTheRouterAfterTheReadoutLowersTheBlockError() throws {
        let options = [("experts", "4"), ("shared", "1"), ("top_k", "1"), ("router", "fitted"), ("windows", "4"), ("k_act", "3")]
        let (once, onceReports) = try Self.run(options, fit: FitSpec(method: .lstsq, routerRounds: 0))
        let (refitted, refittedReports) = try Self.run(options, fit: FitSpec(method: .lstsq, routerRounds: 2))
        XCTAssertNotEqual(once.blocks[0].parameters["mlp.moe.router.weight"], refitted.blocks[0].parameters["mlp.moe.router.weight"])
        let a = try XCTUnwrap(onceReports[0].errorAfterFit), b = try XCTUnwrap(refittedReports[0].errorAfterFit)
        XCTAssertLessThan(b, a)
        // The analytical router is not linear: nothing to refit, the rounds change nothing.
        let analytical = [("experts", "4"), ("shared", "1"), ("top_k", "1"), ("windows", "4"), ("k_act", "3")]
        XCTAssertEqual(try Self.run(analytical, fit: FitSpec(method: .lstsq, routerRounds: 0)).0.blocks[1].parameters,
                       try Self.run(analytical, fit: FitSpec(method: .lstsq, routerRounds: 2)).0.blocks[1].parameters)
    }

    /// `shared_by: importance` fills the shared expert with the channels of largest ‖act_c‖ · ‖down[:, c]‖ on the
    /// calibration tokens, the rest split into equal routed experts.
    func testSharedByImportanceKeepsTheChannelsOfLargestContribution() throws {
        let (model, _) = try Self.run([("experts", "4"), ("shared", "1"), ("top_k", "1"), ("shared_by", "importance"), ("windows", "2"), ("k_act", "3")])
        let dense = Self.dense.blocks[0]
        let down = try XCTUnwrap(dense.parameters["mlp.down.weight"])
        let x = try ModelRunner(model: Self.dense).embed(Self.windows(4).joined().map { $0 })
        let act = try BlockExecutor.forward(dense, input: x, context: ExecutionContext(batch: 4, length: 16), capture: ["act"]).values["act"]!
        let (width, rows, tokens) = (down.shape[1], down.shape[0], act.shape[0])
        let score = (0..<width).map { c -> Double in
            let a = (0..<tokens).reduce(0.0) { $0 + Double(act.scalars[$1 * width + c] * act.scalars[$1 * width + c]) }
            let d = (0..<rows).reduce(0.0) { $0 + Double(down.scalars[$1 * width + c] * down.scalars[$1 * width + c]) }
            return (a * d).squareRoot()
        }
        let want = Set(Array(0..<width).sorted { score[$0] > score[$1] }.prefix(width / 4))
        let shared = try XCTUnwrap(model.blocks[0].parameters["mlp.moe.shared.down.weight"])
        let got = Set((0..<shared.shape[1]).map { j in
            (0..<width).first { c in (0..<rows).allSatisfy { down.scalars[$0 * width + c] == shared.scalars[$0 * shared.shape[1] + j] } }!
        })
        XCTAssertEqual(got, want)
        XCTAssertThrowsError(try Self.run([("experts", "4"), ("shared", "1"), ("shared_by", "size")])) { e in
            XCTAssertTrue("\(e)".contains("shared_by"), "\(e)")
        }
    }
}
