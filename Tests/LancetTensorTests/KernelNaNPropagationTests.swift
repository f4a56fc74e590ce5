import XCTest
@testable import LancetTensor

/// Widths straddle the 16-lane vector body and its tail.
private let widths = [1, 3, 15, 16, 17, 64, 100]

/// Every kernel carries a NaN from its input (or weight) to the outputs that depend on it, and leaves
/// the outputs that do not depend on it as they are without the NaN.
final class KernelNaNPropagationTests: XCTestCase {
    /// `values` with a NaN at `index`.
    func poisoned(_ values: [Float], at index: Int) -> [Float] {
        var v = values
        v[index] = .nan
        return v
    }

    /// Positions to poison in a vector of `count`: first, last, and one inside the 16-lane body.
    func positions(_ count: Int) -> [Int] { Array(Set([0, count / 2, count - 1])).sorted() }

    // MARK: maxima

    func testLanewiseMaxKeepsANaNFromEitherSideAndIsTheBlendOtherwise() {
        let a = SIMD16<Float>(randomVector(16, seed: 1, in: -2..<2))
        var b = SIMD16<Float>(randomVector(16, seed: 2, in: -2..<2))
        b[3] = -0.0
        var c = a
        c[3] = 0.0
        for i in 0..<16 { XCTAssertEqual(lanewiseMax(c, b)[i].bitPattern, (b[i] > c[i] ? b[i] : c[i]).bitPattern, "lane \(i)") }
        var an = a, bn = b
        an[5] = .nan
        bn[9] = .nan
        let m = lanewiseMax(an, bn)
        XCTAssertTrue(m[5].isNaN, "a NaN in the running maximum stays")
        XCTAssertTrue(m[9].isNaN, "a NaN in the new values is taken")
        XCTAssertEqual(m.indices.filter { m[$0].isNaN }, [5, 9])
        for lane in 0..<16 {
            var v = a
            v[lane] = .nan
            XCTAssertTrue(maxLane(v).isNaN, "NaN in lane \(lane)")
        }
        XCTAssertEqual(maxLane(a), a.max())
        XCTAssertTrue(maxPropagatingNaN(.nan, 1).isNaN)
        XCTAssertTrue(maxPropagatingNaN(1, .nan).isNaN)
        XCTAssertEqual(maxPropagatingNaN(0.0, -0.0).bitPattern, Swift.max(Float(0.0), -0.0).bitPattern)
    }

    // MARK: softmax and log-sum-exp

    func testSoftmaxOfARowWithANaNAnywhereIsAllNaN() {
        for count in widths {
            for p in positions(count) {
                var x = poisoned(randomVector(count, seed: UInt64(count), in: -8..<8), at: p)
                x.withPointer { softmax(inPlace: $0, count: count) }
                XCTAssertTrue(x.allSatisfy(\.isNaN), "count \(count), NaN at \(p): \(x.prefix(4))")
            }
        }
    }

    func testSoftmaxOfAllNaNScoresIsNaNNotTheZerosOfAMaskedRow() {
        for count in widths {
            var x = [Float](repeating: .nan, count: count)
            x.withPointer { softmax(inPlace: $0, count: count) }
            XCTAssertTrue(x.allSatisfy(\.isNaN), "count \(count)")
            guard count > 1 else { continue }
            var mixed: [Float] = (0..<count).map { $0 % 2 == 0 ? -.infinity : .nan }
            mixed.withPointer { softmax(inPlace: $0, count: count) }
            XCTAssertTrue(mixed.allSatisfy(\.isNaN), "masked and NaN entries, count \(count)")
        }
    }

    func testSoftmaxBackwardCarriesANaNInTheOutputGradientToEveryEntry() {
        for count in [2, 17, 40] {
            var y = randomVector(count, seed: UInt64(count), in: -3..<3)
            y.withPointer { softmax(inPlace: $0, count: count) }
            var dy = poisoned(randomVector(count, seed: 7), at: count - 1)
            var dx = [Float](repeating: 0, count: count)
            y.withPointer { py in dy.withPointer { pdy in dx.withPointer { softmaxBackward(py, pdy, count: count, dx: $0) } } }
            XCTAssertTrue(dx.allSatisfy(\.isNaN), "count \(count)")
        }
    }

    func testLogSumExpIsNaNWhenAnyEntryIsNaN() {
        for count in widths + [300] {
            for p in positions(count) {
                var x = poisoned(randomVector(count, seed: UInt64(count) + 3, in: -20..<20), at: p)
                XCTAssertTrue(x.withPointer { logSumExp($0, count: count) }.isNaN, "count \(count), NaN at \(p)")
                x[(p + 1) % count] = .infinity
                if count > 1 { XCTAssertTrue(x.withPointer { logSumExp($0, count: count) }.isNaN, "with +∞, count \(count)") }
            }
            var all = [Float](repeating: .nan, count: count)
            XCTAssertTrue(all.withPointer { logSumExp($0, count: count) }.isNaN, "all NaN, count \(count)")
        }
    }

    // MARK: RMSNorm

    func testRMSNormOfARowWithANaNIsNaNAndOtherRowsAreUnchanged() {
        for dim in widths {
            let rows = 3
            let clean = randomVector(rows * dim, seed: UInt64(dim), in: -3..<3)
            var w = randomVector(dim, seed: 1, in: 0.5..<1.5)
            var x = poisoned(clean, at: dim + dim / 2)  // inside row 1
            var cleanX = clean
            var out = [Float](repeating: 0, count: rows * dim), want = out
            x.withPointer { px in w.withPointer { pw in out.withPointer { rmsNorm(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: $0) } } }
            cleanX.withPointer { px in w.withPointer { pw in want.withPointer { rmsNorm(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: $0) } } }
            XCTAssertTrue(out[dim..<(2 * dim)].allSatisfy(\.isNaN), "dim \(dim): the poisoned row")
            XCTAssertEqual(Array(out[0..<dim]) + Array(out[(2 * dim)...]), Array(want[0..<dim]) + Array(want[(2 * dim)...]))
        }
    }

    func testRMSNormWithANaNWeightGivesNaNInThatFeatureOfEveryRow() {
        for dim in widths {
            let rows = 2
            var x = randomVector(rows * dim, seed: UInt64(dim), in: -3..<3)
            let j = dim - 1
            var w = poisoned(randomVector(dim, seed: 1, in: 0.5..<1.5), at: j)
            var out = [Float](repeating: 0, count: rows * dim)
            x.withPointer { px in w.withPointer { pw in out.withPointer { rmsNorm(px, weight: pw, rows: rows, dim: dim, eps: 1e-5, out: $0) } } }
            XCTAssertEqual(out.indices.filter { out[$0].isNaN }, (0..<rows).map { $0 * dim + j }, "dim \(dim)")
        }
    }

    func testRMSNormWithANaNEpsilonIsNaN() {
        var x = randomVector(20, seed: 4), w = randomVector(20, seed: 5)
        var out = [Float](repeating: 0, count: 20)
        x.withPointer { px in w.withPointer { pw in out.withPointer { rmsNorm(px, weight: pw, rows: 1, dim: 20, eps: .nan, out: $0) } } }
        XCTAssertTrue(out.allSatisfy(\.isNaN))
    }

    func testRMSNormBackwardOfARowWithANaNIsNaNInThatRowAndInTheWeightGradient() {
        let rows = 2, dim = 20
        var x = poisoned(randomVector(rows * dim, seed: 8, in: -2..<2), at: 3)
        var w = randomVector(dim, seed: 9, in: 0.5..<1.5), dy = randomVector(rows * dim, seed: 10)
        var dx = [Float](repeating: 0, count: rows * dim), dw = [Float](repeating: 0, count: dim)
        x.withPointer { px in w.withPointer { pw in dy.withPointer { pdy in dx.withPointer { pdx in dw.withPointer {
            rmsNormBackward(px, weight: pw, dy: pdy, rows: rows, dim: dim, eps: 1e-5, dx: pdx, dWeight: $0)
        }}}}}
        XCTAssertTrue(dx[0..<dim].allSatisfy(\.isNaN))
        XCTAssertTrue(dx[dim...].allSatisfy(\.isFinite), "the clean row's input gradient")
        XCTAssertTrue(dw.allSatisfy(\.isNaN), "every weight gradient sums over the poisoned row")
    }

    // MARK: SiLU and SwiGLU

    func testSiLUAndSwiGLUGiveNaNExactlyWhereAnInputIsNaN() {
        for count in widths {
            for p in positions(count) {
                var x = poisoned(randomVector(count, seed: UInt64(count) + 20, in: -12..<12), at: p)
                var up = randomVector(count, seed: 21)
                var out = [Float](repeating: 0, count: count)
                x.withPointer { px in out.withPointer { silu(px, count: count, out: $0) } }
                XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "silu, count \(count)")
                x.withPointer { px in up.withPointer { pu in out.withPointer { swiglu(gate: px, up: pu, count: count, out: $0) } } }
                XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "swiglu NaN gate, count \(count)")
                var gate = randomVector(count, seed: 22, in: -12..<12)
                up = poisoned(up, at: p)
                gate.withPointer { pg in up.withPointer { pu in out.withPointer { swiglu(gate: pg, up: pu, count: count, out: $0) } } }
                XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "swiglu NaN up, count \(count)")
            }
        }
    }

    func testSiLUAndSwiGLUBackwardGiveNaNExactlyWhereAnInputIsNaN() {
        let count = 37, p = 17
        var x = poisoned(randomVector(count, seed: 30, in: -6..<6), at: p)
        var up = randomVector(count, seed: 31), dy = randomVector(count, seed: 32)
        var dx = [Float](repeating: 0, count: count), du = dx
        x.withPointer { px in dy.withPointer { pdy in dx.withPointer { siluBackward(px, dy: pdy, count: count, dx: $0) } } }
        XCTAssertEqual(dx.indices.filter { dx[$0].isNaN }, [p])
        x.withPointer { px in up.withPointer { pu in dy.withPointer { pdy in dx.withPointer { pdx in du.withPointer {
            swigluBackward(gate: px, up: pu, dOut: pdy, count: count, dGate: pdx, dUp: $0)
        }}}}}
        XCTAssertEqual(dx.indices.filter { dx[$0].isNaN }, [p])
        XCTAssertEqual(du.indices.filter { du[$0].isNaN }, [p])
    }

    // MARK: RoPE

    func testRopeGivesNaNInTheRotatedPairOfANaNAndNowhereElse() {
        let tokens = 3, heads = 2, headDim = 40, rotaryDim = 32, stride = heads * headDim
        let frequencies = ropeInverseFrequencies(rotaryDim: rotaryDim, theta: 10000)
        let positions: [Int32] = [0, 5, 9]
        for pairing in [RopePairing.adjacent, .halves] {
            // (token, head, dimension) → the dimension it is paired with.
            for (t, h, i) in [(0, 0, 3), (1, 1, 20), (2, 0, 35)] {
                var x = randomVector(tokens * stride, seed: 40, in: -2..<2)
                x[t * stride + h * headDim + i] = .nan
                x.withPointer { px in positions.withUnsafeBufferPointer { pp in frequencies.withUnsafeBufferPointer { pf in
                    rope(x: px, tokens: tokens, heads: heads, headDim: headDim, rowStride: stride, positions: pp.baseAddress!,
                         inverseFrequencies: pf.baseAddress!, rotaryDim: rotaryDim, pairing: pairing)
                }}}
                let partner = i >= rotaryDim ? i : pairing == .adjacent ? i ^ 1 : (i + rotaryDim / 2) % rotaryDim
                let base = t * stride + h * headDim
                XCTAssertEqual(x.indices.filter { x[$0].isNaN }, Set([base + i, base + partner]).sorted(), "\(pairing) token \(t) head \(h) dim \(i)")
            }
        }
    }

    // MARK: BLAS and vector helpers

    func testMatmulGivesNaNInTheRowOfANaNInputAndTheColumnOfANaNWeight() {
        // Zero inputs do not hide a NaN weight: 0·NaN is NaN.
        for (tokens, inputs, outputs) in [(1, 8, 5), (7, 33, 19), (64, 96, 130)] {
            var x = randomMatrix(tokens, inputs, seed: UInt64(inputs))
            var w = randomMatrix(outputs, inputs, seed: UInt64(outputs))
            x[tokens - 1, inputs / 2] = .nan
            var y = matmul(x, w, transposeB: true)
            XCTAssertEqual(nanCells(y), (0..<outputs).map { [tokens - 1, $0] }, "\(tokens)×\(inputs)·\(outputs)")
            x.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            w[outputs / 3, inputs - 1] = .nan
            y = matmul(x, w, transposeB: true)
            XCTAssertEqual(nanCells(y), (0..<tokens).map { [$0, outputs / 3] }, "zero input against a NaN weight")
        }
    }

    func testGemvGivesNaNWhereARowOfTheMatrixHoldsANaN() {
        let m = 9, n = 21
        var a = randomVector(m * n, seed: 50), x = randomVector(n, seed: 51)
        a[4 * n + 7] = .nan
        var y = [Float](repeating: 0, count: m), yt = [Float](repeating: 0, count: n)
        a.withPointer { pa in x.withPointer { px in y.withPointer { gemv(trans: .none, m: m, n: n, alpha: 1, a: pa, lda: n, x: px, beta: 0, y: $0) } } }
        XCTAssertEqual(y.indices.filter { y[$0].isNaN }, [4])
        var xt = randomVector(m, seed: 52)
        a.withPointer { pa in xt.withPointer { px in yt.withPointer { gemv(trans: .transpose, m: m, n: n, alpha: 1, a: pa, lda: n, x: px, beta: 0, y: $0) } } }
        XCTAssertEqual(yt.indices.filter { yt[$0].isNaN }, [7])
    }

    func testVectorHelpersCarryANaNToTheirResults() {
        for count in [5, 16, 40] {
            let p = count - 2
            var a = poisoned(randomVector(count, seed: 60), at: p), b = randomVector(count, seed: 61)
            var out = [Float](repeating: 0, count: count)
            a.withPointer { pa in b.withPointer { pb in out.withPointer { add(pa, pb, count: count, out: $0) } } }
            XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "add")
            a.withPointer { pa in b.withPointer { pb in out.withPointer { multiply(pa, pb, count: count, out: $0) } } }
            XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "multiply")
            a.withPointer { pa in out.withPointer { scale(pa, by: 0, count: count, out: $0) } }
            XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "scale by 0")
            out = b
            a.withPointer { pa in out.withPointer { axpy(alpha: 2, pa, $0, count: count) } }
            XCTAssertEqual(out.indices.filter { out[$0].isNaN }, [p], "axpy")
            XCTAssertTrue(a.withPointer { pa in b.withPointer { dot(pa, $0, count: count) } }.isNaN, "dot")
            XCTAssertTrue(a.withPointer { sumOfSquares($0, count: count) }.isNaN, "sumOfSquares")
        }
    }

    /// The [row, column] of every NaN of a matrix, row-major.
    func nanCells(_ t: Tensor) -> [[Int]] {
        var cells: [[Int]] = []
        for i in 0..<t.shape[0] { for j in 0..<t.shape[1] where t[i, j].isNaN { cells.append([i, j]) } }
        return cells
    }
}
