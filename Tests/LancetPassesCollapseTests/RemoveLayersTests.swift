import Foundation
import Lancet
@testable import LancetPassesCollapse
import XCTest

/// `remove-layers` on tiny seeded models: the scores against hand computations, the blocks removed, the span fits.
final class RemoveLayersTests: XCTestCase {
    static func model(blocks: Int = 6) -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = blocks
        return TinyLlama.make(sizes, seed: 17)
    }

    static func calibration(_ model: Model, windows: Int = 6, length: Int = 16) -> CalibrationSet {
        var g = SeededGenerator(seed: 2)
        return CalibrationSet(windows: (0..<windows).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) } }, seed: 2)
    }

    /// Options as recipe values: `[a, b]` is a list of numbers, anything else a scalar.
    static func values(_ options: [(String, String)]) -> OptionValue {
        .object(options.map { key, text in
            let value: OptionValue = text.hasPrefix("[")
                ? .list(text.dropFirst().dropLast().split(separator: ",").map { .scalar($0.trimmingCharacters(in: .whitespaces), quoted: false, location: nil) },
                        location: nil)
                : .scalar(text, quoted: false, location: nil)
            return (key: key, value: value, location: nil)
        })
    }

    /// Runs `pass` (remove-layers by default) with `options` and `fit` on a copy of `dense`, checks the result verifies.
    static func run(_ options: [(String, String)], pass: String = "remove-layers", fit: FitSpec = FitSpec(), on dense: Model) throws -> (Model, PassReport) {
        let values = Self.values(options)
        var model = dense
        let recipe = Recipe(stages: [Stage(name: "collapse", passes: [PassInvocation(name: pass, options: values, fit: fit)])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: calibration(dense))
        try Verifier.verify(model)
        return (model, try XCTUnwrap(report.passes.first))
    }

    /// Every block boundary's hidden states, all windows in one call.
    static func boundaries(_ model: Model, _ calibration: CalibrationSet) throws -> [Tensor] {
        let context = ExecutionContext(batch: calibration.windows.count, length: calibration.length)
        var x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
        var result = [x]
        for (i, block) in model.blocks.enumerated() {
            x = try BlockExecutor.forward(block, index: i, input: x, context: context).output
            result.append(x)
        }
        return result
    }

    /// What the recipe validator says of `pass` with `options` on `model`.
    static func problems(_ options: [(String, String)], pass: String, registry: PassRegistry, model: Model) -> [String] {
        let recipe = Recipe(calibration: CalibrationSpec(data: "c4.txt", samples: 4, context: 16),
                            stages: [Stage(name: "s", passes: [PassInvocation(name: pass, options: values(options))])])
        return RecipeValidator.validate(recipe, registry: registry, model: model, checkFiles: false).map(\.description)
    }

    static func cosines(_ a: Tensor, _ b: Tensor) -> [Double] {
        (0..<a.shape[0]).map { r in
            let x = (0..<a.shape[1]).map { Double(a[r, $0]) }, y = (0..<a.shape[1]).map { Double(b[r, $0]) }
            return zip(x, y).map(*).reduce(0, +) / (x.map { $0 * $0 }.reduce(0, +) * y.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
    }

    func testBlockInfluenceEqualsItsHandComputationAndTheLeastInfluentialBlocksGo() throws {
        let dense = Self.model()
        let states = try Self.boundaries(dense, Self.calibration(dense))
        let influence = (0..<6).map { b in 1 - Self.cosines(states[b], states[b + 1]).reduce(0, +) / Double(states[b].shape[0]) }
        let (model, report) = try Self.run([("method", "block-influence"), ("count", "2")], on: dense)
        for (i, bi) in influence.enumerated() { XCTAssertEqual(report.metrics["score.\(i)"] ?? .nan, bi, accuracy: 1e-5, "block \(i)") }
        let expected = influence.indices.sorted { influence[$0] < influence[$1] }.prefix(2).sorted()
        XCTAssertEqual(report.notes.first, "removed blocks " + expected.map(String.init).joined(separator: ", "))
        XCTAssertEqual(model.blocks.count, 4)
    }

    func testAngularSpanRemovesTheContiguousSpanWithTheClosestEnds() throws {
        let dense = Self.model()
        let states = try Self.boundaries(dense, Self.calibration(dense))
        let distances = (0...3).map { l in Self.cosines(states[l], states[l + 3]).map { acos(min(max($0, -1), 1)) / .pi }.reduce(0, +) / Double(states[l].shape[0]) }
        let (model, report) = try Self.run([("method", "angular-span"), ("count", "3")], on: dense)
        for (l, d) in distances.enumerated() { XCTAssertEqual(report.metrics["score.\(l)"] ?? .nan, d, accuracy: 1e-5, "span from \(l)") }
        XCTAssertNil(report.metrics["score.4"])
        let start = distances.indices.min { distances[$0] < distances[$1] }!
        XCTAssertEqual(report.notes.first, "removed blocks " + (start..<(start + 3)).map(String.init).joined(separator: ", "))
        XCTAssertEqual(model.blocks.count, 3)
    }

    func testAnExplicitListRemovesExactlyThoseBlocksAndKeepsTheOthersInOrder() throws {
        let dense = Self.model()
        let (model, report) = try Self.run([("blocks", "[4, 1]")], on: dense)
        XCTAssertEqual(report.notes.first, "removed blocks 1, 4")
        XCTAssertEqual(model.blocks.map(\.parameters), [0, 2, 3, 5].map { dense.blocks[$0].parameters }, "no fit: the kept blocks are untouched")
        XCTAssertNil(report.metrics["score.0"], "an explicit list measures nothing")
    }

    func testRemovingZeroBlocksIsTheIdentity() throws {
        let dense = Self.model()
        let (model, report) = try Self.run([("count", "0")], fit: FitSpec(method: .lstsq), on: dense)
        XCTAssertEqual(model.blocks.map(\.parameters), dense.blocks.map(\.parameters))
        XCTAssertEqual(report.notes, ["removed blocks none"])
    }

    func testTheSpanFitLowersEverySpanError() throws {
        let dense = Self.model()
        for fit in [FitSpec(method: .lstsq), FitSpec(method: .regional, steps: 20, learningRate: 1e-3, batch: 3)] {
            let (_, report) = try Self.run([("blocks", "[2, 3, 5]")], fit: fit, on: dense)
            XCTAssertEqual(report.fit, fit.method.rawValue)
            XCTAssertLessThan(report.errorAfterFit!, report.errorAfterCut!, "\(fit.method)")
            // Blocks 2–3 are taken over by block 4 (span 2…4); block 5 at the end by block 4 too: one merged span, and
            // block 4 is block 2 of the collapsed model (blocks 0, 1, 4 stay).
            XCTAssertEqual(report.notes.dropFirst().count, 1, "\(report.notes)")
            XCTAssertTrue(report.notes[1].hasPrefix("block 2 stands for original blocks 2…5"), report.notes[1])
        }
    }

    func testRepairsTakeEachGapByTheNextBlockAndTheEndByThePrevious() {
        XCTAssertEqual(SpanRepair.plan(removed: [1, 2], blockCount: 6), [.init(survivor: 3, span: 1...3)])
        XCTAssertEqual(SpanRepair.plan(removed: [0, 3], blockCount: 6), [.init(survivor: 1, span: 0...1), .init(survivor: 4, span: 3...4)])
        XCTAssertEqual(SpanRepair.plan(removed: [4, 5], blockCount: 6), [.init(survivor: 3, span: 3...5)])
        XCTAssertEqual(SpanRepair.plan(removed: [2, 4, 5], blockCount: 6), [.init(survivor: 3, span: 2...5)])
    }

    func testBadOptionsAreRefusedByName() throws {
        let registry = try BuiltinPasses.registry()
        let dense = Self.model()
        func problems(_ options: [(String, String)]) -> [String] { Self.problems(options, pass: "remove-layers", registry: registry, model: dense) }
        XCTAssertEqual(problems([("count", "2")]), [])
        XCTAssertTrue(problems([("count", "6")]).contains { $0.contains("remove-layers.count: must leave at least one of the model's 6 blocks") })
        XCTAssertTrue(problems([("method", "random")]).contains { $0.contains("remove-layers.method: must be block-influence or angular-span") })
        XCTAssertTrue(problems([("blocks", "[1, 9]")]).contains { $0.contains("remove-layers.blocks: block 9 is not in the model's blocks 0…5") })
        XCTAssertTrue(problems([("blocks", "[1, 1]")]).contains { $0.contains("lists a block twice") })
        XCTAssertTrue(problems([("ratio", "0.5"), ("blocks", "[1]")]).contains { $0.contains("give blocks or ratio, not both") })
        XCTAssertEqual(problems([("ratio", "0.5")]), [])
    }
}
