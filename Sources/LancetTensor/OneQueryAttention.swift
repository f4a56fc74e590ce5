/// One query head against `count` cached keys and values: decoding's attention, in registers.
///
/// `keys` and `values` point at the first visible position's head slice; consecutive positions are `stride`
/// floats apart (the cache's row width). `scores` (count floats) receives the probabilities
/// softmax(scale · keys·query), and `out` (`dimensions` floats) their weighted sum of the values. NaN in a score
/// makes every probability NaN, as `softmax` does.
public func attendOneQuery(_ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
                           count: Int, dimensions d: Int, scale: Float, scores: UnsafeMutablePointer<Float>,
                           out: UnsafeMutablePointer<Float>) {
    let body = d & ~15
    for j in 0..<count {
        let k = keys + j * stride
        var acc = SIMD16<Float>()
        var c = 0
        while c < body { acc.addProduct(load16(query + c), load16(k + c)); c += 16 }
        var s = acc.sum()
        while c < d { s += query[c] * k[c]; c += 1 }
        scores[j] = scale * s
    }
    softmax(inPlace: scores, count: count)
    out.update(repeating: 0, count: d)
    for j in 0..<count {
        let v = values + j * stride, p = scores[j]
        var c = 0
        while c < body { store16(load16(out + c).addingProduct(SIMD16(repeating: p), load16(v + c)), out + c); c += 16 }
        while c < d { out[c] += p * v[c]; c += 1 }
    }
}
