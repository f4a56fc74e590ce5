import Foundation
import Lancet
@testable import LancetPassesDecompose
import XCTest

/// The factorisations themselves: full rank reproduces the weight, whitening minimises the error on the inputs, the
/// reported truncation error is the real one.
final class LowRankFactorizationTests: XCTestCase {
    /// A weight and correlated inputs with a few loud channels, as hidden states have.
    static func problem(out: Int, inputs: Int, tokens: Int, seed: UInt64) -> (w: Tensor, x: Tensor) {
        var g = SeededGenerator(seed: seed)
        let w = Tensor.randomNormal(shape: [out, inputs], std: 0.2, generator: &g)
        let sources = Tensor.randomNormal(shape: [tokens, inputs], std: 1, generator: &g)
        let mixing = Tensor.randomNormal(shape: [inputs, inputs], std: Float(1 / Double(inputs).squareRoot()), generator: &g)
        var x = matmul(sources, mixing)
        x.withUnsafeMutableBufferPointer { p in
            for t in 0..<tokens { for j in stride(from: 2, to: inputs, by: 9) { p[t * inputs + j] *= 8 } }
        }
        return (w, x)
    }

    /// ‖X (W − W')ᵀ‖² / ‖X Wᵀ‖².
    static func outputError(_ approx: Tensor, _ w: Tensor, _ x: Tensor) -> Double {
        let y = matmul(x, w, transposeB: true).scalars, ya = matmul(x, approx, transposeB: true).scalars
        let num = zip(y, ya).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return num / y.reduce(0.0) { $0 + Double($1) * Double($1) }
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float { zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0 }

    func testFullRankReproducesTheLayerUnderEveryWeighting() throws {
        for (c, shape) in [(24, 40), (40, 24), (32, 32)].enumerated() {
            let (w, x) = Self.problem(out: shape.0, inputs: shape.1, tokens: 200, seed: UInt64(c))
            let means = (0..<shape.1).map { j in (0..<200).reduce(Float(0)) { $0 + abs(x.scalars[$1 * shape.1 + j]) } / 200 }
            let weightings: [InputWeighting] = [.none, .diagonal(means.map { $0.squareRoot() }),
                                                try .whitening(gram: gram(x), damping: 1e-6)]
            for weighting in weightings {
                let f = try LowRankFactors.truncate(w, weighting: weighting, rank: min(shape.0, shape.1))
                XCTAssertEqual(f.a.shape, [min(shape.0, shape.1), shape.1])
                XCTAssertEqual(f.b.shape, [shape.0, min(shape.0, shape.1)])
                XCTAssertLessThan(Self.maxDifference(f.product, w), 1e-5, "\(shape) \(weighting)")
                XCTAssertEqual(f.relativeTruncationError, 0, accuracy: 1e-12)
            }
        }
    }

    func testWhitenedTruncationHasALowerErrorOnTheInputsThanPlainSVD() throws {
        for (c, shape) in [(48, 64), (64, 48), (96, 96)].enumerated() {
            let (w, x) = Self.problem(out: shape.0, inputs: shape.1, tokens: 400, seed: 20 + UInt64(c))
            let whitening = try InputWeighting.whitening(gram: gram(x), damping: 1e-6)
            for rank in [4, 12, 24] {
                let plain = try LowRankFactors.truncate(w, weighting: .none, rank: rank)
                let whitened = try LowRankFactors.truncate(w, weighting: whitening, rank: rank)
                let ePlain = Self.outputError(plain.product, w, x), eWhite = Self.outputError(whitened.product, w, x)
                XCTAssertLessThan(eWhite, ePlain, "\(shape) rank \(rank)")
                // Under whitening the discarded spectrum is the output error itself.
                XCTAssertEqual(whitened.relativeTruncationError, eWhite, accuracy: 2e-3 * eWhite + 1e-6, "\(shape) rank \(rank)")
            }
        }
    }

    func testFactoriseReplacesTheLinearAndKeepsTheGraphValid() throws {
        let model = TinyLlama.make(TinyLlama.Sizes(), seed: 3)
        var block = model.blocks[0]
        let w = block.parameters["attn.q.weight"]!
        let f = try LowRankFactors.truncate(w, weighting: .none, rank: min(w.shape[0], w.shape[1]))
        block.factorise(linear: "attn.q", into: f)
        try Verifier.verify(block, index: 0, hiddenSize: model.config.hiddenSize)
        XCTAssertNil(block.parameters["attn.q.weight"])
        XCTAssertEqual(block.parameters["attn.q.a"]?.shape, f.a.shape)
        XCTAssertNotNil((block.node("attn.q")?.op as? LinearOp)?.factors)
        // Same outputs as the dense block at full rank.
        var g = SeededGenerator(seed: 4)
        let input = Tensor.randomNormal(shape: [8, model.config.hiddenSize], std: 1, generator: &g)
        let context = { ExecutionContext(batch: 1, length: 8) }
        let dense = try BlockExecutor.forward(model.blocks[0], input: input, context: context()).output
        let factored = try BlockExecutor.forward(block, input: input, context: context()).output
        XCTAssertLessThan(Self.maxDifference(dense, factored), 1e-4)
    }
}
