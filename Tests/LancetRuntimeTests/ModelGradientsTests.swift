import Foundation
import Lancet
@testable import LancetRuntime
import XCTest

/// The whole-model loss gradient (`ModelGradients`): against finite differences on a tiny model, at every block
/// output and every linear output, and against a full-tape backward on SmolLM2.
final class ModelGradientsTests: XCTestCase {
    static func model(blocks: Int = 3) -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = blocks
        sizes.vocabulary = 96
        return TinyLlama.make(sizes, seed: 21)
    }

    static func windows(_ model: Model, count: Int = 2, length: Int = 10, seed: UInt64 = 5) -> [[Int32]] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) } }
    }

    /// The mean next-token NLL of `windows` when the residual stream after block `after` is `hidden` (the blocks
    /// after it, the final norm and the head run on it), in Double from the Float logits.
    static func loss(_ model: Model, windows: [[Int32]], hidden: Tensor, after: Int) throws -> Double {
        let length = windows[0].count
        let context = ExecutionContext(batch: windows.count, length: length)
        var x = hidden
        for i in (after + 1)..<model.blocks.count {
            x = try BlockExecutor.forward(model.blocks[i], index: i, input: x, context: context).output
        }
        let evaluator = PerplexityEvaluator(model: model, context: length)
        let normed = evaluator.runner.finalNorm(x)
        var total = 0.0
        for (w, window) in windows.enumerated() {
            total += evaluator.nll(normedHidden: normed.slicingRows((w * length)..<((w + 1) * length)), targets: window) * Double(length - 1)
        }
        return total / Double(windows.count * (length - 1))
    }

    static func hidden(_ model: Model, windows: [[Int32]], through block: Int) throws -> Tensor {
        let context = ExecutionContext(batch: windows.count, length: windows[0].count)
        var x = try ModelRunner(model: model).embed(Array(windows.joined()))
        for i in 0...block { x = try BlockExecutor.forward(model.blocks[i], index: i, input: x, context: context).output }
        return x
    }

    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in (0..<p.count).reduce(0.0) { $0 + Double(p[$1]) * Double(q[$1]) } } }
    }

    static func relativeError(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(a), abs(b), 1e-12) }

    func testBlockOutputGradientsAgreeWithFiniteDifferences() throws {
        let model = Self.model()
        let windows = Self.windows(model)
        var gradients: [Int: Tensor] = [:]
        let nllSum = try ModelGradients(model: model).backward(windows: windows) { gradients[$0.block] = $0.outputGradient }
        XCTAssertEqual(Set(gradients.keys), [0, 1, 2])
        let base = try Self.loss(model, windows: windows, hidden: try Self.hidden(model, windows: windows, through: 2), after: 2)
        XCTAssertEqual(nllSum / Double(2 * 9), base, accuracy: 1e-5, "the loss the backward computes")
        for b in 0..<3 {
            let g = gradients[b]!
            let y = try Self.hidden(model, windows: windows, through: b)
            // Along the gradient and along a random direction; a step of 3e-3 of the norm of y.
            var generator = SeededGenerator(seed: UInt64(b) + 100)
            let random = Tensor.randomNormal(shape: y.shape, generator: &generator)
            for direction in [g, random] {
                let norm = Self.dot(direction, direction).squareRoot()
                let scale = Float(Self.dot(y, y).squareRoot() / norm * 3e-3)
                let v = Elementwise.map(direction) { $0 * scale }
                let plus = try Self.loss(model, windows: windows, hidden: Elementwise.zip(y, v) { $0 + $1 }, after: b)
                let minus = try Self.loss(model, windows: windows, hidden: Elementwise.zip(y, v) { $0 - $1 }, after: b)
                let numeric = (plus - minus) / 2, analytic = Self.dot(g, v)
                XCTAssertLessThan(Self.relativeError(numeric, analytic), 1e-3, "block \(b) output: finite difference \(numeric), gradient \(analytic)")
            }
        }
    }

    func testLinearOutputGradientsAgreeWithFiniteDifferencesOfTheirWeights() throws {
        // ∂L/∂W = Gᵀ·X for a linear y = x·Wᵀ, so the gradient G at its output is checked through its weight:
        // the directional derivative of the loss along D equals ⟨Gᵀ·X, D⟩.
        let model = Self.model(blocks: 2)
        let windows = Self.windows(model)
        let linears = model.blocks[0].nodes(of: LinearOp.self).map { (node: $0.node.name, input: $0.node.inputs[0], output: $0.node.outputs[0], weight: $0.op.weight!) }
        var captured: [Int: ModelGradients.BlockGradient] = [:]
        try ModelGradients(model: model).backward(windows: windows, capture: Set(linears.map(\.input)), captureGradients: Set(linears.map(\.output))) {
            captured[$0.block] = $0
        }
        for b in 0..<2 {
            let step = try XCTUnwrap(captured[b])
            for linear in linears {
                let g = try XCTUnwrap(step.valueGradients[linear.output], "block \(b) \(linear.node)")
                let x = try XCTUnwrap(step.values[linear.input])
                let weightGradient = matmul(g, x, transposeA: true)                 // [out, in]
                XCTAssertEqual(weightGradient.relativeErrorForTests(step.parameterGradients[linear.weight]!), 0, accuracy: 1e-10,
                               "block \(b) \(linear.node): Gᵀ·X is the parameter gradient")
                // Along the gradient mixed with a random direction of the same norm (the derivative is then large
                // enough for Float32 finite differences, and a wrong gradient would not match it).
                var generator = SeededGenerator(seed: 7)
                let w = model.blocks[b].parameters[linear.weight]!
                let random = Tensor.randomNormal(shape: w.shape, generator: &generator)
                let mix = Float((Self.dot(weightGradient, weightGradient) / Self.dot(random, random)).squareRoot())
                let d = Elementwise.zip(weightGradient, random) { $0 + mix * $1 }
                let scale = Float(Self.dot(w, w).squareRoot() / Self.dot(d, d).squareRoot() * 2e-3)
                func loss(_ sign: Float) throws -> Double {
                    var m = model
                    m.blocks[b].parameters[linear.weight] = Elementwise.zip(w, d) { $0 + sign * scale * $1 }
                    return try Self.loss(m, windows: windows, hidden: try Self.hidden(m, windows: windows, through: 1), after: 1)
                }
                let numeric = (try loss(1) - (try loss(-1))) / 2
                let analytic = Self.dot(weightGradient, d) * Double(scale)
                XCTAssertLessThan(Self.relativeError(numeric, analytic), 1e-3, "block \(b) \(linear.node): finite difference \(numeric), gradient \(analytic)")
            }
        }
    }

    func testBatchGradientsAddUpToTheWholeSetsGradient() throws {
        let model = Self.model(blocks: 2)
        let windows = Self.windows(model, count: 4, length: 8)
        var whole: [Int: Tensor] = [:], parts: [Int: Tensor] = [:]
        let predictions = Double(4 * 7)
        let sum = try ModelGradients(model: model).backward(windows: windows, normalizer: predictions) { whole[$0.block] = $0.parameterGradients["mlp.down.weight"] }
        var partSum = 0.0
        for first in [0, 2] {
            partSum += try ModelGradients(model: model).backward(windows: Array(windows[first..<(first + 2)]), firstWindow: first, normalizer: predictions) {
                Linear.accumulate(&parts[$0.block], $0.parameterGradients["mlp.down.weight"]!)
            }
        }
        XCTAssertEqual(sum, partSum, accuracy: 1e-6 * sum)
        for b in 0..<2 { XCTAssertLessThan(whole[b]!.relativeErrorForTests(parts[b]!), 1e-9) }
    }

    func testSampledLabelsAreSeededAndDifferFromTheData() throws {
        var model = Self.model(blocks: 1)
        model.finalNorm = Elementwise.map(model.finalNorm) { $0 * 0.05 }   // flat predictions: draws differ by seed
        let windows = Self.windows(model)
        func gradient(_ labels: ModelGradients.Labels) throws -> Tensor {
            var g: Tensor?
            try ModelGradients(model: model, labels: labels).backward(windows: windows) { g = $0.outputGradient }
            return g!
        }
        XCTAssertEqual(try gradient(.sampled(seed: 3)), try gradient(.sampled(seed: 3)))
        XCTAssertNotEqual(try gradient(.sampled(seed: 3)), try gradient(.sampled(seed: 4)))
        XCTAssertNotEqual(try gradient(.sampled(seed: 3)), try gradient(.data))
    }

    func testOnSmolLM2TheRecomputingBackwardEqualsAFullTapeBackward() throws {
        let model = try RealModel.model()
        let tokens = Array(try RealModel.numbers("wiki-test-window0-ids.txt").map { Int32($0) }.prefix(128))
        let windows = [tokens]
        var recomputed: [Int: Tensor] = [:]
        try ModelGradients(model: model).backward(windows: windows) { recomputed[$0.block] = $0.outputGradient }
        // Full tape: every block's forward values kept, then one backward from the head.
        let context = ExecutionContext(batch: 1, length: tokens.count)
        var x = try ModelRunner(model: model).embed(tokens)
        var tapes: [[String: Tensor]] = []
        for (i, block) in model.blocks.enumerated() {
            let r = try BlockExecutor.forward(block, index: i, input: x, context: context, keepValues: true)
            tapes.append(r.values)
            x = r.output
        }
        var g = try ModelGradients(model: model).headBackward(x, windows: windows, firstWindow: 0, scale: 1 / Double(tokens.count - 1)).1
        for i in model.blocks.indices.reversed() {
            XCTAssertLessThanOrEqual(g.relativeErrorForTests(recomputed[i]!), 1e-4 * 1e-4, "block \(i) output gradient")
            g = try BlockExecutor.backward(model.blocks[i], index: i, values: tapes[i], outputGradient: g, context: context).input
        }
    }
}

extension Tensor {
    /// ‖self − other‖² / ‖other‖² (relative error squared, as `relativeError(to:)` of the surgery layer).
    func relativeErrorForTests(_ other: Tensor) -> Double {
        precondition(count == other.count)
        return withUnsafeBufferPointer { a in other.withUnsafeBufferPointer { b in
            var num = 0.0, den = 0.0
            for i in 0..<a.count { num += (Double(a[i]) - Double(b[i])) * (Double(a[i]) - Double(b[i])); den += Double(b[i]) * Double(b[i]) }
            return den > 0 ? num / den : num
        }}
    }
}
