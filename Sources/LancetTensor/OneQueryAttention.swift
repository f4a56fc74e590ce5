import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cached positions per work item of decoding's attention. The split of the work into chunks — and therefore the
/// rounding — depends on the cache's length only, not on the number of cores.
public let oneQueryChunkPositions = 64

/// Decoding's attention: one query per head against `count` cached keys and values, grouped-query (query head `h`
/// reads KV head `h / (heads / kvHeads)`), in registers and without BLAS (a gemm call per head costs more than the
/// arithmetic at decode sizes).
///
/// `queries` holds `heads × dimensions` floats; `keys` and `values` point at the first visible position, whose KV
/// heads lie side by side, consecutive positions `stride` floats apart (the cache's row width). `out` receives
/// `heads × dimensions` floats: softmax(scale · keys·query) · values per head.
///
/// The work is cut into chunks of `oneQueryChunkPositions` positions: a chunk reads each position's row of keys once,
/// in order, for every query head (a loop per query head read each KV head `heads / kvHeads` times, a slice at a time
/// from rows far apart), keeps each head's partial softmax (maximum, sum, unnormalised weighted values), and the chunks
/// are combined in order afterwards, the way flash-decoding splits a long cache. Chunks are spread over the worker pool,
/// consecutive ones to a core, once there is enough work to pay for the hand-off. A NaN score makes its head's output
/// NaN, as `softmax` does.
public func attendOneQuery(_ queries: UnsafePointer<Float>, heads: Int, kvHeads: Int, keys: UnsafePointer<Float>,
                           values: UnsafePointer<Float>, stride: Int, count: Int, dimensions d: Int, scale: Float,
                           out: UnsafeMutablePointer<Float>) {
    precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0, "attendOneQuery: kvHeads must divide heads")
    let chunks = (count + oneQueryChunkPositions - 1) / oneQueryChunkPositions
    guard chunks > 0 else {
        out.update(repeating: 0, count: heads * d)
        return
    }
    let itemFloats = heads * (2 + d)   // per head: maximum, sum, then the heads' unnormalised outputs
    let parts = heads * count * d >= 1 << 16 ? min(chunks, processorCount) : 1
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: chunks * itemFloats)
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: parts * heads * oneQueryChunkPositions)
    defer { partials.deallocate(); scores.deallocate() }
    WorkerPool.shared.run(parts: parts) { part in
        // A part takes consecutive chunks: its positions' rows stream from memory in order.
        for chunk in chunks * part / parts..<chunks * (part + 1) / parts {
            let first = chunk * oneQueryChunkPositions
            attendChunk(queries, heads: heads, kvHeads: kvHeads, keys: keys + first * stride, values: values + first * stride,
                        stride: stride, count: min(oneQueryChunkPositions, count - first), dimensions: d, scale: scale,
                        scores: scores + part * heads * oneQueryChunkPositions, partial: partials + chunk * itemFloats)
        }
    }
    for h in 0..<heads {
        combineChunks(partials, chunks: chunks, heads: heads, head: h, dimensions: d, out: out + h * d)
    }
}

/// Every query head against `count` positions: for head `h`, `partial[h]` receives the chunk's maximum score,
/// `partial[heads + h]` the sum of `exp(score − maximum)`, and `partial[2·heads + h·d ..< …+d]` those exponentials'
/// weighted sum of its KV head's values. `scores` is scratch of `heads × count` floats.
///
/// Scores: each position's row (every KV head) is read once, in order, for all query heads; a dot product's 16 lanes
/// are summed as a tree (`SIMD.sum()` adds them one after the other, a chain longer than the products). Values: each
/// head's output is held in registers, 64 floats at a time, across the chunk's positions.
@inline(__always)
private func attendChunk(_ q: UnsafePointer<Float>, heads: Int, kvHeads: Int, keys: UnsafePointer<Float>,
                         values: UnsafePointer<Float>, stride: Int, count n: Int, dimensions d: Int, scale: Float,
                         scores: UnsafeMutablePointer<Float>, partial: UnsafeMutablePointer<Float>) {
    let body = d & ~15, group = heads / kvHeads, width = kvHeads * d
    for j in 0..<n {
        let k = keys + j * stride
        if j + prefetchDistance < n {
            let ahead = (j + prefetchDistance) * stride
            var line = 0
            while line < width { lancet_prefetch(values + ahead + line); line += 16 }
        }
        for h in 0..<heads {
            let qh = q + h * d, kh = k + h / group * d
            var acc = SIMD16<Float>()
            var c = 0
            while c < body { acc.addProduct(load16(qh + c), load16(kh + c)); c += 16 }
            var s = treeSum(acc)
            while c < d { s += qh[c] * kh[c]; c += 1 }
            scores[h * n + j] = scale * s
        }
    }
    for h in 0..<heads {
        (partial[h], partial[heads + h]) = exponentiateShifted(inPlace: scores + h * n, count: n)
    }
    let weighted = partial + 2 * heads
    let wide = d & ~63
    for h in 0..<heads {
        let p = scores + h * n, o = weighted + h * d, vh = values + h / group * d
        var c = 0
        while c < wide {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for j in 0..<n {
                let v = vh + j * stride + c, w = SIMD16<Float>(repeating: p[j])
                a0.addProduct(w, load16(v)); a1.addProduct(w, load16(v + 16))
                a2.addProduct(w, load16(v + 32)); a3.addProduct(w, load16(v + 48))
            }
            store16(a0, o + c); store16(a1, o + c + 16); store16(a2, o + c + 32); store16(a3, o + c + 48)
            c += 64
        }
        while c < body {
            var a = SIMD16<Float>()
            for j in 0..<n { a.addProduct(SIMD16(repeating: p[j]), load16(vh + j * stride + c)) }
            store16(a, o + c)
            c += 16
        }
        while c < d {
            var a: Float = 0
            for j in 0..<n { a += p[j] * vh[j * stride + c] }
            o[c] = a
            c += 1
        }
    }
}

/// Positions ahead of the scores loop whose value rows are prefetched, so the values pass finds them in cache (the keys'
/// rows are read in order and the hardware prefetcher follows them; the values are read a head's slice at a time).
private let prefetchDistance = 4

/// The sum of a vector's 16 lanes by halves (4 dependent additions where `SIMD.sum()` chains 15).
@inline(__always) private func treeSum(_ v: SIMD16<Float>) -> Float {
    let eight = v.lowHalf + v.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// Combines query head `head`'s partial softmaxes of `chunks` consecutive chunks (`heads × (2 + d)` floats each, as
/// `attendChunk` wrote them) into its output: Σ e^(mᶜ−M)·oᶜ / Σ e^(mᶜ−M)·lᶜ with M the largest chunk maximum.
private func combineChunks(_ partials: UnsafePointer<Float>, chunks: Int, heads: Int, head: Int,
                           dimensions d: Int, out: UnsafeMutablePointer<Float>) {
    let itemStride = heads * (2 + d)
    var largest = -Float.infinity
    for c in 0..<chunks { largest = maxPropagatingNaN(largest, partials[c * itemStride + head]) }
    if largest.isNaN || largest == -.infinity {
        out.update(repeating: largest.isNaN ? .nan : 0, count: d)
        return
    }
    var total: Float = 0
    out.update(repeating: 0, count: d)
    let body = d & ~15
    for c in 0..<chunks {
        let item = partials + c * itemStride
        let w = expf(item[head] - largest)
        total += w * item[heads + head]
        let o = item + 2 * heads + head * d
        var k = 0
        while k < body { store16(load16(out + k).addingProduct(SIMD16(repeating: w), load16(o + k)), out + k); k += 16 }
        while k < d { out[k] += w * o[k]; k += 1 }
    }
    let inv = 1 / total
    for k in 0..<d { out[k] *= inv }
}
