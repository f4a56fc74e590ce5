import Foundation
import Lancet
@testable import LancetPassesPrune
@testable import LancetSurgery
import XCTest

/// SparseGPT: the lazily batched solver equals the naive column-by-column OBS, its update lowers the layer
/// reconstruction error below the same mask without it, and the patterns are exact.
final class SparseGPTTests: XCTestCase {
    /// A weight `[rows, cols]` and the Gram of `tokens` inputs whose channels are correlated (a random mixing
    /// of independent sources, as hidden states are) with a few outlier channels.
    static func problem(rows: Int, cols: Int, tokens: Int, seed: UInt64) -> (w: Tensor, x: Tensor, h: Tensor) {
        var g = SeededGenerator(seed: seed)
        let w = Tensor.randomNormal(shape: [rows, cols], std: 0.2, generator: &g)
        let sources = Tensor.randomNormal(shape: [tokens, cols], std: 1, generator: &g)
        let mixing = Tensor.randomNormal(shape: [cols, cols], std: Float(1 / Double(cols).squareRoot()), generator: &g)
        var x = matmul(sources, mixing)
        x.withUnsafeMutableBufferPointer { p in
            for t in 0..<tokens { for j in stride(from: 1, to: cols, by: 7) { p[t * cols + j] *= 6 } }
        }
        return (w, x, gram(x))
    }

    /// ‖(W − W₀)X‖² / ‖W₀X‖² from the activations themselves (no Gram), in Double.
    static func outputError(_ w: Tensor, _ w0: Tensor, _ x: Tensor) -> Double {
        let y = matmul(x, w, transposeB: true).scalars, y0 = matmul(x, w0, transposeB: true).scalars
        let num = zip(y, y0).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return num / y0.reduce(0.0) { $0 + Double($1) * Double($1) }
    }

    func testLazyBatchedSolverEqualsNaiveColumnByColumnOBS() throws {
        let cases: [(rows: Int, cols: Int, block: Int)] = [(8, 12, 4), (16, 40, 16), (24, 64, 128), (10, 48, 8), (33, 96, 32)]
        let patterns: [SparsityPattern] = [.unstructured(sparsity: 0.5, perRow: false), .unstructured(sparsity: 0.3, perRow: false),
                                           .nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4)]
        for (c, shape) in cases.enumerated() {
            let (w, _, h) = Self.problem(rows: shape.rows, cols: shape.cols, tokens: 3 * shape.cols, seed: UInt64(c))
            for pattern in patterns {
                let fast = try SparseGPTSolver.prune(weight: w, gram: h, pattern: pattern, blockSize: shape.block, damping: 0.01)
                let slow = try SparseGPTSolver.referencePrune(weight: w, gram: h, pattern: pattern, blockSize: shape.block, damping: 0.01)
                XCTAssertEqual(fast.mask, slow.mask, "\(shape) \(pattern): masks differ")
                let scale = w.scalars.map(abs).max()!
                let diff = zip(fast.weight.scalars, slow.weight.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(diff, 1e-4 * scale, "\(shape) \(pattern): max difference \(diff)")
            }
        }
    }

    func testUpdateLowersLayerReconstructionErrorBelowTheSameMaskWithoutIt() throws {
        for (c, shape) in [(16, 32, 8), (40, 64, 16), (24, 96, 128)].enumerated() {
            let (w, x, h) = Self.problem(rows: shape.0, cols: shape.1, tokens: 4 * shape.1, seed: 10 + UInt64(c))
            for pattern: SparsityPattern in [.unstructured(sparsity: 0.5, perRow: false), .unstructured(sparsity: 0.7, perRow: false), .nOfM(n: 2, m: 4)] {
                let r = try SparseGPTSolver.prune(weight: w, gram: h, pattern: pattern, blockSize: shape.2, damping: 0.01)
                var maskOnly = w
                r.mask.apply(to: &maskOnly)
                let updated = Self.outputError(r.weight, w, x), plain = Self.outputError(maskOnly, w, x)
                XCTAssertLessThan(updated, plain, "\(shape) \(pattern): updated \(updated) vs mask only \(plain)")
                XCTAssertEqual(r.error, updated, accuracy: 1e-3 * max(updated, 1e-6) + 1e-5, "reported error \(shape) \(pattern)")
                XCTAssertEqual(r.errorMaskOnly, plain, accuracy: 1e-3 * plain + 1e-5, "reported mask-only error \(shape) \(pattern)")
            }
        }
    }

    func testUnstructuredMaskPrunesTheSparsityOfEveryColumnBlockAndNOfMIsExact() throws {
        let (w, _, h) = Self.problem(rows: 20, cols: 72, tokens: 200, seed: 3)
        for (sparsity, block) in [(0.5, 16), (0.3, 32), (0.75, 128)] {
            let r = try SparseGPTSolver.prune(weight: w, gram: h, pattern: .unstructured(sparsity: sparsity, perRow: false), blockSize: block, damping: 0.01)
            for i1 in stride(from: 0, to: 72, by: block) {
                let cols = i1..<min(i1 + block, 72)
                let pruned = (0..<20).reduce(0) { acc, r0 in acc + cols.reduce(0) { $0 + (r.mask.keep[r0 * 72 + $1] == 0 ? 1 : 0) } }
                XCTAssertEqual(pruned, Int(Double(20 * cols.count) * sparsity), "block \(i1) at \(sparsity)")
            }
            XCTAssertTrue(zip(r.weight.scalars, r.mask.keep).allSatisfy { $1 != 0 || $0 == 0 })
        }
        for (n, m) in [(2, 4), (4, 8), (1, 4)] {
            let r = try SparseGPTSolver.prune(weight: w, gram: h, pattern: .nOfM(n: n, m: m), blockSize: 24, damping: 0.01)
            assertNOfM(r.mask, n: n, m: m, "\(n):\(m)")
        }
    }

    func testDeadInputChannelsAreZeroedWithoutNaNs() throws {
        let (w, x0, _) = Self.problem(rows: 12, cols: 16, tokens: 64, seed: 4)
        var x = x0
        x.withUnsafeMutableBufferPointer { p in for t in 0..<64 { p[t * 16 + 5] = 0; p[t * 16 + 11] = 0 } }
        let r = try SparseGPTSolver.prune(weight: w, gram: gram(x), pattern: .unstructured(sparsity: 0.5, perRow: false), blockSize: 8, damping: 0.01)
        XCTAssertTrue(r.weight.scalars.allSatisfy(\.isFinite))
        for row in 0..<12 { XCTAssertEqual(r.weight.scalars[row * 16 + 5], 0); XCTAssertEqual(r.weight.scalars[row * 16 + 11], 0) }
    }

    func testSparseGPTPassOnTinyBlocksLowersEachLayersErrorAndVerifies() throws {
        let fx = WandaTests.fixtures[1]
        for pattern in ["unstructured", "2:4"] {
            let pass = try makePass(SparseGPTPass.self, [("sparsity", "0.5"), ("pattern", pattern), ("block_size", "32")])
            for b in fx.model.blocks.indices {
                var block = fx.model.blocks[b]
                let report = try pass.apply(to: &block, context: try fx.context(block: b, pass: pass))
                try Verifier.verify(block, index: b, hiddenSize: fx.model.config.hiddenSize)
                XCTAssertEqual(report.metrics["sparsity"]!, 0.5, accuracy: 1e-9)
                let linears = block.nodes(of: LinearOp.self)
                let x = try fx.captured(block: b, Set(linears.map { $0.node.inputs[0] }))
                for (node, op) in linears {
                    let w0 = fx.model.blocks[b].parameters[op.weight!]!
                    var maskOnly = w0
                    block.masks[op.weight!]!.apply(to: &maskOnly)
                    let updated = Self.outputError(block.parameters[op.weight!]!, w0, x[node.inputs[0]]!)
                    let plain = Self.outputError(maskOnly, w0, x[node.inputs[0]]!)
                    XCTAssertLessThan(updated, plain, "block \(b) \(node.name) \(pattern)")
                    XCTAssertLessThan(report.metrics["reconstruction_error.\(node.name)"]!, report.metrics["reconstruction_error_mask_only.\(node.name)"]!)
                    if pattern == "2:4" { assertNOfM(block.masks[op.weight!]!, n: 2, m: 4, node.name) }
                }
            }
        }
    }

    func testSparseGPTRejectsABlockSizeThatSplitsNOfMGroups() {
        XCTAssertThrowsError(try makePass(SparseGPTPass.self, [("pattern", "4:8"), ("block_size", "12")])) { error in
            XCTAssertTrue("\(error)".contains("sparsegpt.block_size"), "\(error)")
        }
        XCTAssertThrowsError(try makePass(SparseGPTPass.self, [("damping", "0")]))
    }
}
