import XCTest
@testable import LancetTensor
import Foundation

/// RoPE against a Double reference (relative 1e-5), and its algebraic properties.
final class RopeTests: XCTestCase {
    struct Layout { var tokens, heads, headDim, rotaryDim, rowStride: Int }
    static let layouts = [
        Layout(tokens: 1, heads: 1, headDim: 2, rotaryDim: 2, rowStride: 2),
        Layout(tokens: 5, heads: 3, headDim: 64, rotaryDim: 64, rowStride: 192),
        Layout(tokens: 4, heads: 2, headDim: 48, rotaryDim: 32, rowStride: 100),  // partial rotary, padded rows
        Layout(tokens: 3, heads: 9, headDim: 64, rotaryDim: 64, rowStride: 9 * 64 + 3 * 64),  // Q of a fused QKV row
    ]

    private func apply(_ x: inout [Float], _ l: Layout, positions: [Int32], pairing: RopePairing, inverse: Bool = false, reference: Bool = false, theta: Double = 10000) {
        var p = positions
        var freqs = ropeInverseFrequencies(rotaryDim: l.rotaryDim, theta: theta)
        x.withPointer { px in
            p.withUnsafeMutableBufferPointer { pp in
                freqs.withPointer { pf in
                    if reference {
                        ropeReference(x: px, tokens: l.tokens, heads: l.heads, headDim: l.headDim, rowStride: l.rowStride,
                                      positions: pp.baseAddress!, inverseFrequencies: pf, rotaryDim: l.rotaryDim, pairing: pairing, inverse: inverse)
                    } else {
                        rope(x: px, tokens: l.tokens, heads: l.heads, headDim: l.headDim, rowStride: l.rowStride,
                             positions: pp.baseAddress!, inverseFrequencies: pf, rotaryDim: l.rotaryDim, pairing: pairing, inverse: inverse)
                    }
                }
            }
        }
    }

    private func positions(_ n: Int) -> [Int32] { (0..<n).map { Int32($0 * 37 + 1) } }

    func testRopeMatchesTheDoubleReferenceAndLeavesUnrotatedDimensionsAlone() {
        for (i, l) in Self.layouts.enumerated() {
            for pairing in [RopePairing.adjacent, .halves] {
                for inverse in [false, true] {
                    let x0 = randomVector(l.tokens * l.rowStride, seed: UInt64(i))
                    var x = x0, ref = x0
                    apply(&x, l, positions: positions(l.tokens), pairing: pairing, inverse: inverse)
                    apply(&ref, l, positions: positions(l.tokens), pairing: pairing, inverse: inverse, reference: true)
                    XCTAssertLessThan(maxScaledDifference(x, ref), 1e-5, "layout \(i) \(pairing) inverse \(inverse)")
                    for t in 0..<l.tokens {
                        for j in 0..<l.rowStride {
                            let inHead = j < l.heads * l.headDim && j % l.headDim < l.rotaryDim
                            if !inHead { XCTAssertEqual(x[t * l.rowStride + j], x0[t * l.rowStride + j], "index \(j) must be untouched") }
                        }
                    }
                }
            }
        }
    }

    func testInverseRopeUndoesRope() {
        for (i, l) in Self.layouts.enumerated() {
            for pairing in [RopePairing.adjacent, .halves] {
                let x0 = randomVector(l.tokens * l.rowStride, seed: UInt64(i) + 10)
                var x = x0
                apply(&x, l, positions: positions(l.tokens), pairing: pairing)
                XCTAssertGreaterThan(maxScaledDifference(x, x0), 1e-2, "rope must change the vector")
                apply(&x, l, positions: positions(l.tokens), pairing: pairing, inverse: true)
                XCTAssertLessThan(maxScaledDifference(x, x0), 2e-6, "layout \(i) \(pairing)")
            }
        }
    }

    func testInverseRopeIsTheAdjointSoItIsTheVJP() {
        // ⟨rope(x), c⟩ = ⟨x, rope⁻¹(c)⟩ for the linear map rope, i.e. ∂⟨rope(x), c⟩/∂x = rope⁻¹(c).
        for (i, l) in Self.layouts.enumerated() {
            for pairing in [RopePairing.adjacent, .halves] {
                let x0 = randomVector(l.tokens * l.rowStride, seed: UInt64(i) + 20)
                let c0 = randomVector(l.tokens * l.rowStride, seed: UInt64(i) + 30)
                var x = x0, c = c0
                apply(&x, l, positions: positions(l.tokens), pairing: pairing)
                apply(&c, l, positions: positions(l.tokens), pairing: pairing, inverse: true)
                let lhs = zip(x, c0).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let rhs = zip(x0, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * Double(x0.count))
            }
        }
    }

    func testAdjacentAndHalvesPairingsAgreeAfterPermutingHeadDimensions() {
        // Halves pairs (i, i + d/2); adjacent pairs (2i, 2i+1). Interleaving each head's first and second
        // rotary half maps one layout to the other (what llama.cpp's converter does to Q and K weights).
        let l = Layout(tokens: 4, heads: 3, headDim: 40, rotaryDim: 32, rowStride: 120)
        let half = l.rotaryDim / 2
        func interleave(_ v: [Float]) -> [Float] {
            var out = v
            for t in 0..<l.tokens {
                for h in 0..<l.heads {
                    let base = t * l.rowStride + h * l.headDim
                    for i in 0..<half {
                        out[base + 2 * i] = v[base + i]
                        out[base + 2 * i + 1] = v[base + i + half]
                    }
                }
            }
            return out
        }
        let x = randomVector(l.tokens * l.rowStride, seed: 40)
        var viaHalves = x
        apply(&viaHalves, l, positions: positions(l.tokens), pairing: .halves)
        var viaAdjacent = interleave(x)
        apply(&viaAdjacent, l, positions: positions(l.tokens), pairing: .adjacent)
        XCTAssertEqual(interleave(viaHalves), viaAdjacent)
    }

    func testRopeAtPositionZeroIsTheIdentity() {
        let l = Self.layouts[1]
        let x0 = randomVector(l.tokens * l.rowStride, seed: 50)
        var x = x0
        apply(&x, l, positions: [Int32](repeating: 0, count: l.tokens), pairing: .halves)
        XCTAssertEqual(x, x0)
    }

    func testInverseFrequenciesArePowersOfTheta() {
        let f = ropeInverseFrequencies(rotaryDim: 64, theta: 10000)
        XCTAssertEqual(f.count, 32)
        XCTAssertEqual(f[0], 1)
        for i in 0..<32 {
            XCTAssertEqual(f[i], Float(Foundation.pow(10000.0, -Double(2 * i) / 64)), accuracy: f[i].ulp)
            XCTAssertEqual(f[i], powf(10000, -Float(2 * i) / 64), accuracy: 4 * f[i].ulp, "close to llama.cpp's Float arithmetic")
        }
        XCTAssertEqual(Double(f[1]), 0.749_894_209_332_456, accuracy: 1e-7)  // 10000^(−1/32)
    }
}
