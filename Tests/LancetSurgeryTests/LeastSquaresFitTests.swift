import Foundation
import Lancet
@testable import LancetSurgery
import XCTest

/// Per-linear least squares: the rounds follow the block's dataflow, and damping does not shrink weights
/// when a few input channels dominate the Gram (as in real hidden states).
final class LeastSquaresFitTests: XCTestCase {
    func testRoundsFollowTheDataflowOfALlamaBlock() throws {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 1
        let dense = TinyLlama.make(sizes, seed: 2).blocks[0]
        var cut = dense
        for (_, op) in cut.nodes(of: LinearOp.self) {
            let name = op.weight!
            let w = cut.parameters[name]!
            cut.setMasked(name, weight: w, mask: Mask(shape: w.shape, keep: (0..<w.count).map { UInt8($0 % 2) }))
        }
        let targets = LeastSquaresFit.targets(cut: cut, dense: dense)
        XCTAssertEqual(targets.count, 7)
        let rounds = LeastSquaresFit.rounds(targets, in: cut).map { $0.map(\.input) }
        // q/k/v read the attention norm, o the attention output, gate/up the FFN norm, down the activation.
        XCTAssertEqual(rounds.map(\.count), [3, 1, 2, 1], "\(rounds)")
        for round in rounds { XCTAssertEqual(Set(round).count, 1, "one input value per round: \(round)") }
        XCTAssertEqual(Set(rounds.map { $0[0] }).count, 4)
    }

    func testDampingWithAnOutlierChannelStillLowersTheObjective() throws {
        var g = SeededGenerator(seed: 9)
        let (tokens, inputs, outputs) = (400, 16, 8)
        var x = Tensor.randomNormal(shape: [tokens, inputs], std: 1, generator: &g)
        x.withUnsafeMutableBufferPointer { p in for t in 0..<tokens { p[t * inputs] *= 1000 } }   // one huge channel
        let w0 = Tensor.randomNormal(shape: [outputs, inputs], std: 0.1, generator: &g)
        // Every row keeps the outlier channel and every other of the rest.
        let mask = Mask(shape: [outputs, inputs], keep: (0..<(outputs * inputs)).map { $0 % inputs == 0 ? 1 : UInt8(($0 / 3) % 2) })
        var cut = w0
        mask.apply(to: &cut)
        let gram = matmul(x, x, transposeA: true)
        let rhs = matmul(gram, w0, transposeB: true)                      // C·W₀ᵀ with C = G (same inputs)
        var fitted = try LeastSquaresFit.solveRows(cut, mask: mask, gram: gram, rhs: rhs, damping: 0.01)
        mask.apply(to: &fitted)
        // ‖X Wᵀ − X W₀ᵀ‖² in Double from the activations (the Gram form loses it to rounding beside the
        // outlier channel's energy).
        func error(_ w: Tensor) -> Double {
            let (xp, wp, w0p) = (x.scalars, w.scalars, w0.scalars)
            var total = 0.0
            for t in 0..<tokens {
                for r in 0..<outputs {
                    var d = 0.0
                    for j in 0..<inputs { d += Double(xp[t * inputs + j]) * (Double(wp[r * inputs + j]) - Double(w0p[r * inputs + j])) }
                    total += d * d
                }
            }
            return total
        }
        let before = error(cut), after = error(fitted)
        XCTAssertLessThan(after, before, "fitted \(after) vs cut \(before)")
        // The damped fit stays close to the undamped optimum (small channels are not shrunk towards zero).
        let optimum = error(try LeastSquaresFit.solveRows(cut, mask: mask, gram: gram, rhs: rhs, damping: 0))
        XCTAssertLessThan(after, 1.5 * optimum, "damped \(after) vs optimum \(optimum)")
    }
}
