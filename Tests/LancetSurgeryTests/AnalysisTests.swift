import Foundation
import Lancet
@testable import LancetSurgery
import XCTest

/// The open analysis protocol: analyses are sums that merge across chunks, passes define their own, and the pipeline
/// caches them per block, reusing an analysis for a later pass unless an earlier pass changed what it reads.
final class AnalysisTests: XCTestCase {
    /// XᵀX of a value, counting the calls it accumulates (a pass-defined analysis).
    struct CountingGram: BlockAnalysis {
        static let calls = Locked(0)
        let value: String
        var id: String { "counting-gram(\(value))" }
        func reads(in block: Block) -> Set<String> { [value] }
        func accumulate(_ sum: inout TensorSum?, values: [String: Tensor]) throws {
            Self.calls.mutate { $0 += 1 }
            try InputGram(value: value).accumulate(&sum, values: values)
        }
    }

    /// Reads the counting Gram of `attn_in` and changes nothing.
    struct ReadsAttnIn: BlockPass {
        struct Options: Codable, Sendable {}
        static let name = "reads-attn-in"
        static let summary = "test pass"
        static var defaultOptions: Options { Options() }
        init(options: Options) {}
        func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] { [CountingGram(value: "attn_in")] }
        func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
            let g = try context.statistics.value(of: CountingGram(value: "attn_in")).tensor
            return PassReport(pass: Self.name, metrics: ["trace": (0..<g.shape[0]).reduce(0.0) { $0 + Double(g[$1, $1]) }])
        }
    }

    /// Scales one parameter of the block by 0.9.
    struct Scale: BlockPass {
        struct Options: Codable, Sendable { var parameter = "mlp.down.weight" }
        static let name = "scale"
        static let summary = "test pass"
        static var defaultOptions: Options { Options() }
        let options: Options
        init(options: Options) { self.options = options }
        func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
            block.parameters[options.parameter] = Elementwise.map(block.parameters[options.parameter]!) { $0 * 0.9 }
            return PassReport(pass: Self.name)
        }
    }

    func run(scaling parameter: String) throws -> (calls: Int, report: RunReport) {
        let model = ModelPassContextTests.model(blocks: 2)
        var m = model
        let scale = OptionValue.object([(key: "parameter", value: .scalar(parameter, quoted: true, location: nil), location: nil)])
        let recipe = Recipe(stages: [Stage(name: "s", passes: [
            PassInvocation(name: "reads-attn-in"), PassInvocation(name: "scale", options: scale), PassInvocation(name: "reads-attn-in"),
        ])])
        let registry = try BuiltinPasses.registry(extra: [[ReadsAttnIn.self, Scale.self]])
        let before = CountingGram.calls.value
        let report = try Pipeline(recipe: recipe, registry: registry).run(on: &m, calibration: PipelineTests.calibration(model: model, windows: 6, length: 16))
        return (CountingGram.calls.value - before, report)
    }

    func testACachedAnalysisIsReusedUnlessAnEarlierPassChangedWhatItReads() throws {
        // 6 windows, 4 per call: 2 calls per collection, per block (2 blocks).
        let downstream = try run(scaling: "mlp.down.weight")
        XCTAssertEqual(downstream.calls, 2 * 2, "mlp.down is downstream of attn_in: the second reader reuses the first's analysis")
        let upstream = try run(scaling: "attn_norm.weight")
        XCTAssertEqual(upstream.calls, 2 * 2 * 2, "attn_norm writes attn_in: the second reader recomputes it")
        // The recomputed analysis sees the scaled norm: its trace is 0.81 of the first one's.
        let traces = upstream.report.passes.filter { $0.pass == "reads-attn-in" && $0.block == 0 }.map { $0.metrics["trace"]! }
        XCTAssertEqual(traces.count, 2)
        XCTAssertEqual(traces[1] / traces[0], 0.81, accuracy: 1e-4)
        let reused = downstream.report.passes.filter { $0.pass == "reads-attn-in" && $0.block == 0 }.map { $0.metrics["trace"]! }
        XCTAssertEqual(reused[0], reused[1])
    }

    func testAnAnalysisComputedInTwoChunksEqualsTheOneComputedAtOnce() throws {
        let model = ModelPassContextTests.model(blocks: 1)
        let calibration = PipelineTests.calibration(model: model, windows: 6, length: 16)
        let x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
        let block = model.blocks[0]
        let collector = StatisticsCollector(sweep: BlockSweep(windowsPerCall: 3, length: 16))
        let analyses: [any BlockAnalysis] = [InputGram(value: "attn_in"), InputSquares(value: "mlp_in")]
        let atOnce = try collector.collect(block, index: 0, inputs: x, analyses: analyses, teacherWindows: 0).statistics
        let first = try collector.collect(block, index: 0, inputs: x.slicingRows(0..<48), analyses: analyses, teacherWindows: 0).statistics
        let second = try collector.collect(block, index: 0, inputs: x.slicingRows(48..<96), analyses: analyses, teacherWindows: 0).statistics
        var gram = try first.value(of: InputGram(value: "attn_in"))
        gram.merge(try second.value(of: InputGram(value: "attn_in")))
        var squares = try first.value(of: InputSquares(value: "mlp_in"))
        squares.merge(try second.value(of: InputSquares(value: "mlp_in")))
        // One call per chunk either way: the same sums in the same order, to the last bit.
        XCTAssertEqual(gram.tensor, try atOnce.gram(of: "attn_in"))
        XCTAssertEqual(squares.sums, try atOnce.value(of: InputSquares(value: "mlp_in")).sums)
        // Stored into one set, the second chunk merges into the first.
        first.store(try second.value(of: InputGram(value: "attn_in")), for: InputGram(value: "attn_in"), on: block)
        XCTAssertEqual(try first.gram(of: "attn_in"), try atOnce.gram(of: "attn_in"))
    }

    func testColumnSquaresAreNotComputedBesideTheGramOfTheSameValue() throws {
        let model = ModelPassContextTests.model(blocks: 1)
        let calibration = PipelineTests.calibration(model: model, windows: 2, length: 16)
        let x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
        let statistics = try StatisticsCollector(sweep: BlockSweep(windowsPerCall: 2, length: 16))
            .collect(model.blocks[0], index: 0, inputs: x, analyses: [InputSquares(value: "act"), InputGram(value: "act")], teacherWindows: 0).statistics
        XCTAssertEqual(statistics.analysisIDs, ["input-gram(act)"])
        let g = try statistics.gram(of: "act")
        XCTAssertEqual(try statistics.inputNorms(of: "act"), (0..<g.shape[0]).map { g[$0, $0].squareRoot() })
    }

    func testValuesChangedAreTheChangedNodesOutputsAndEverythingDownstream() {
        let block = ModelPassContextTests.model(blocks: 1).blocks[0]
        var down = block
        down.parameters["mlp.down.weight"] = Elementwise.map(down.parameters["mlp.down.weight"]!) { $0 * 2 }
        XCTAssertEqual(down.valuesChanged(from: block), ["mlp_out", "y"])
        var masked = block
        let w = masked.parameters["attn.k.weight"]!
        masked.setMasked("attn.k.weight", weight: w, mask: Mask(shape: w.shape, keep: [UInt8](repeating: 1, count: w.count)))
        XCTAssertEqual(masked.valuesChanged(from: block), ["k", "k_rot", "attn", "attn_out", "h", "mlp_in", "gate", "up", "gate_act", "act", "mlp_out", "y"],
                       "a new mask counts as a change even when it keeps everything")
        XCTAssertEqual(block.valuesChanged(from: block), [])
        var removed = block
        removed.nodes.removeLast()
        removed.output = "mlp_out"
        XCTAssertEqual(removed.valuesChanged(from: block), Set(block.nodes.flatMap(\.outputs)))
    }
}

/// A least-squares fit after a pass with other targets refits what that pass cut too, so the dense Grams of its
/// linears are gathered (the sweep used to gather only the fitted pass's own, and the run failed).
final class StackedFitTests: XCTestCase {
    func testALeastSquaresFitAfterAPassWithOtherTargetsHasTheGramsItNeeds() throws {
        let model = ModelPassContextTests.model(blocks: 2)
        var m = model
        func options(_ sparsity: String) -> OptionValue { .object([(key: "sparsity", value: .scalar(sparsity, quoted: false, location: nil), location: nil)]) }
        let recipe = Recipe(stages: [Stage(name: "s", passes: [
            PassInvocation(name: "wanda", options: options("0.5"), selection: TargetSelection(targets: ["blocks.*.mlp.*"], ignore: [])),
            PassInvocation(name: "magnitude", options: options("0.3"), selection: TargetSelection(targets: ["blocks.*.attn.*"], ignore: []),
                           fit: FitSpec(method: .lstsq)),
        ])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry())
            .run(on: &m, calibration: PipelineTests.calibration(model: model, windows: 6, length: 16))
        let fitted = report.passes.filter { $0.pass == "magnitude" }
        XCTAssertEqual(fitted.count, 2)
        for r in fitted { XCTAssertLessThan(r.errorAfterFit!, r.errorAfterCut!, "block \(r.block!)") }
        // The wanda-pruned MLP weights were refitted too, and keep their masks.
        for b in 0..<2 {
            let mask = try XCTUnwrap(m.blocks[b].masks["mlp.up.weight"])
            XCTAssertEqual(mask.sparsity, 0.5, accuracy: 0.01)
        }
    }
}
