import Foundation
import LancetIR
import LancetRuntime
import LancetTensor
import XCTest

final class AttentionTests: XCTestCase {
    /// Plain causal GQA attention, one query at a time, in Double.
    func naive(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, kvHeads: Int, d: Int, batch: Int, length: Int, window: Int?) -> Tensor {
        var out = Tensor(zeros: q.shape)
        let scale = 1 / Double(d).squareRoot()
        for b in 0..<batch { for h in 0..<heads { for i in 0..<length {
            let g = h / (heads / kvHeads)
            let lo = window.map { max(0, i + 1 - $0) } ?? 0
            var scores: [Double] = []
            for j in lo...i {
                var s = 0.0
                for c in 0..<d { s += Double(q[b * length + i, h * d + c]) * Double(k[b * length + j, g * d + c]) }
                scores.append(s * scale)
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for c in 0..<d {
                var acc = 0.0
                for (n, j) in (lo...i).enumerated() { acc += e[n] / z * Double(v[b * length + j, g * d + c]) }
                out[b * length + i, h * d + c] = Float(acc)
            }
        }}}
        return out
    }

    func testTiledAttentionMatchesNaiveAttentionAcrossTileBoundaries() throws {
        var g = SeededGenerator(seed: 1)
        for (batch, length, heads, kvHeads, window) in [(1, 1, 2, 1, nil), (2, 130, 4, 2, nil), (1, 300, 3, 3, nil), (1, 200, 4, 1, 50 as Int?)] {
            let d = 8
            let q = Tensor.randomNormal(shape: [batch * length, heads * d], std: 1, generator: &g)
            let k = Tensor.randomNormal(shape: [batch * length, kvHeads * d], std: 1, generator: &g)
            let v = Tensor.randomNormal(shape: [batch * length, kvHeads * d], std: 1, generator: &g)
            let op = AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d, window: window)
            let got = try op.forward([q, k, v], parameters: Block(output: "x", nodes: [], parameters: [:]),
                                     context: ExecutionContext(batch: batch, length: length))[0]
            let want = naive(q, k, v, heads: heads, kvHeads: kvHeads, d: d, batch: batch, length: length, window: window)
            let err = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(err, 1e-5, "batch \(batch) length \(length) heads \(heads)/\(kvHeads) window \(String(describing: window))")
        }
    }

    /// Prefill's query tiles (`queryTileRows` queries, row blocks of `attentionRowBlock`, keys in panels of 16): head
    /// sizes of whole panels (64, SmolLM2's) and with a tail (20), grouped queries, a window, and a prompt prefilled in
    /// two calls through a KV cache (the second call's queries start mid-panel, at position 70).
    func testQueryTilesMatchNaiveAttentionWithHeadSizeTailsAndACachedPrefix() throws {
        var g = SeededGenerator(seed: 5)
        for (heads, kvHeads, d, window) in [(6, 2, 64, nil), (3, 1, 20, nil), (4, 2, 64, 37 as Int?)] {
            let length = queryTileRows * 2 + 34
            let q = Tensor.randomNormal(shape: [length, heads * d], std: 1, generator: &g)
            let k = Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g)
            let v = Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g)
            let want = naive(q, k, v, heads: heads, kvHeads: kvHeads, d: d, batch: 1, length: length, window: window)
            let op = AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d, window: window)
            let whole = try op.forward([q, k, v], parameters: Block(output: "x", nodes: [], parameters: [:]),
                                       context: ExecutionContext(batch: 1, length: length))[0]
            let cache = KVCache(capacity: length)
            var parts: [Float] = []
            for range in [0..<70, 70..<length] {
                parts += try op.forward([q, k, v].map { $0.slicingRows(range) }, parameters: Block(output: "x", nodes: [], parameters: [:]),
                                        context: ExecutionContext(batch: 1, length: range.count, startPosition: range.lowerBound, cache: cache))[0].scalars
            }
            let label = "heads \(heads)/\(kvHeads) d \(d) window \(String(describing: window))"
            XCTAssertLessThan(zip(whole.scalars, want.scalars).map { abs($0 - $1) }.max()!, 1e-5, label)
            XCTAssertLessThan(zip(parts, want.scalars).map { abs($0 - $1) }.max()!, 1e-5, label + ", through the cache")
        }
    }

    /// Decoding's one-query path (chunks of `oneQueryChunkPositions` cached positions, each KV head read once for its
    /// query heads, combined afterwards) against the naive attention of the whole sequence, at positions on both
    /// sides of the chunk boundaries, with grouped queries, head sizes with and without a 16-float tail, a window.
    func testOneQueryDecodingMatchesNaiveAttentionAcrossChunks() throws {
        var g = SeededGenerator(seed: 3)
        let chunk = oneQueryChunkPositions
        for (heads, kvHeads, d, window) in [(6, 2, 64, nil), (3, 1, 20, nil), (4, 4, 16, nil), (6, 3, 32, 150 as Int?)] {
            let length = 2 * chunk + 3
            let q = Tensor.randomNormal(shape: [length, heads * d], std: 1, generator: &g)
            let k = Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g)
            let v = Tensor.randomNormal(shape: [length, kvHeads * d], std: 1, generator: &g)
            let want = naive(q, k, v, heads: heads, kvHeads: kvHeads, d: d, batch: 1, length: length, window: window)
            let op = AttentionOp(heads: heads, kvHeads: kvHeads, headDimensions: d, window: window)
            let cache = KVCache(capacity: length)
            let prompt = chunk - 2
            _ = try op.forward([q.slicingRows(0..<prompt), k.slicingRows(0..<prompt), v.slicingRows(0..<prompt)],
                               parameters: Block(output: "x", nodes: [], parameters: [:]),
                               context: ExecutionContext(batch: 1, length: prompt, cache: cache))
            for p in prompt..<length {
                let got = try op.forward([q.slicingRows(p..<(p + 1)), k.slicingRows(p..<(p + 1)), v.slicingRows(p..<(p + 1))],
                                         parameters: Block(output: "x", nodes: [], parameters: [:]),
                                         context: ExecutionContext(batch: 1, length: 1, startPosition: p, cache: cache))[0]
                let err = zip(got.scalars, want.slicingRows(p..<(p + 1)).scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(err, 1e-5, "heads \(heads)/\(kvHeads) d \(d) window \(String(describing: window)) position \(p)")
            }
        }
    }

    /// A NaN key reaches the output of every query head of its group at decode, and no other group's.
    func testOneQueryDecodingPropagatesNaNToItsGroupOnly() {
        let heads = 4, kvHeads = 2, d = 16, count = oneQueryChunkPositions + 40
        var g = SeededGenerator(seed: 4)
        let q = Tensor.randomNormal(shape: [1, heads * d], std: 1, generator: &g)
        var k = Tensor.randomNormal(shape: [count, kvHeads * d], std: 1, generator: &g)
        let v = Tensor.randomNormal(shape: [count, kvHeads * d], std: 1, generator: &g)
        k[count - 3, d + 5] = .nan   // KV head 1, in the second chunk
        var out = [Float](repeating: 0, count: heads * d)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            attendOneQuery(qp.baseAddress!, heads: heads, kvHeads: kvHeads, keys: kp.baseAddress!, values: vp.baseAddress!,
                           stride: kvHeads * d, count: count, dimensions: d, scale: 0.25, out: &out)
        }}}
        XCTAssertTrue(out[0..<(2 * d)].allSatisfy { $0.isFinite }, "group 0 reads no NaN")
        XCTAssertTrue(out[(2 * d)...].allSatisfy { $0.isNaN }, "group 1's heads are NaN")
    }

    func testDecodingWithKVCacheMatchesFullPrefill() throws {
        let model = TinyLlama.make(seed: 21)
        let runner = ModelRunner(model: model)
        var g = SeededGenerator(seed: 2)
        let tokens = (0..<20).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) }
        let full = try runner.logits(tokens, context: ExecutionContext(batch: 1, length: 20))
        let cache = KVCache(capacity: 20)
        _ = try runner.nextTokenLogits(Array(tokens[0..<12]), startPosition: 0, cache: cache)
        for p in 12..<20 {
            let step = try runner.nextTokenLogits([tokens[p]], startPosition: p, cache: cache)
            let want = full.slicingRows(p..<(p + 1)).scalars
            let err = zip(step, want).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(err, 1e-4, "position \(p)")
        }
    }

    func testKVCacheRejectsOverflowWithAnError() throws {
        let model = TinyLlama.make(seed: 22)
        let cache = KVCache(capacity: 4)
        XCTAssertThrowsError(try ModelRunner(model: model).nextTokenLogits([1, 2, 3, 4, 5], cache: cache))
    }
}
