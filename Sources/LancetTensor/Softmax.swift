#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Softmax over one row, forward (in place) and backward.
//
//   y_j = exp(x_j − max x) / Σ_k exp(x_k − max x)
//   dx_j = y_j · (dy_j − Σ_k y_k·dy_k)

/// Replaces `row[0..<count]` by its softmax, subtracting the maximum first so no exponent overflows.
///
/// −∞ entries (masked positions) get exactly 0. A row whose entries are all −∞ has no finite
/// logits and becomes all zeros rather than NaN. A NaN anywhere in the row makes the whole row NaN
/// (the maximum keeps NaN, so a row of NaNs is not mistaken for a masked one). exp is `exp16`
/// (≤ 1–2 ulp).
public func softmax(inPlace row: UnsafeMutablePointer<Float>, count: Int) {
    precondition(count >= 0, "softmax: negative count")
    let (m, sum) = exponentiateShifted(inPlace: row, count: count)
    if count == 0 || m.isNaN || m == -.infinity { return }
    // normalise
    let inv = 1 / sum
    let body = count & ~15
    var j = 0
    while j < body { store16(load16(row + j) * inv, row + j); j += 16 }
    while j < count { row[j] *= inv; j += 1 }
}

/// Replaces `row[0..<count]` by `exp(row − max)` and returns the maximum and the sum of the exponentials: softmax
/// without its normalisation, the partial form that chunks of one row combine from (decoding's attention).
///
/// A NaN anywhere makes the row and the sum NaN and the maximum NaN; a row of −∞ (or an empty one) becomes zeros
/// with maximum −∞ and sum 0.
@discardableResult
public func exponentiateShifted(inPlace row: UnsafeMutablePointer<Float>, count: Int) -> (maximum: Float, sum: Float) {
    if count <= 0 { return (-.infinity, 0) }
    let body = count & ~15
    let rest = count - body
    // 1. maximum
    var vmax = SIMD16<Float>(repeating: -.infinity)
    var j = 0
    while j < body { vmax = lanewiseMax(vmax, load16(row + j)); j += 16 }
    if rest > 0 { vmax = lanewiseMax(vmax, loadPartial16(row + j, rest, fill: -.infinity)) }
    let m = maxLane(vmax)
    if m.isNaN {
        row.update(repeating: .nan, count: count)
        return (.nan, .nan)
    }
    if m == -.infinity {
        row.update(repeating: 0, count: count)
        return (m, 0)
    }
    // 2. exponentials and their sum
    var vsum = SIMD16<Float>()
    j = 0
    while j < body {
        let e = exp16(load16(row + j) - m)
        store16(e, row + j)
        vsum += e
        j += 16
    }
    if rest > 0 {
        let e = exp16(loadPartial16(row + j, rest, fill: -.infinity) - m)  // padding lanes give 0
        storePartial16(e, row + j, rest)
        vsum += e
    }
    return (m, vsum.sum())
}

/// Naive reference for `softmax(inPlace:count:)`, with `expf` and a Double sum.
func softmaxReference(inPlace row: UnsafeMutablePointer<Float>, count: Int) {
    var m = -Float.infinity
    for j in 0..<count { m = maxPropagatingNaN(m, row[j]) }
    var sum = 0.0
    for j in 0..<count { row[j] = expf(row[j] - m); sum += Double(row[j]) }
    for j in 0..<count { row[j] = Float(Double(row[j]) / sum) }
}

/// Backward of softmax: dx_j = y_j·(dy_j − Σ_k y_k·dy_k), from the forward output `y`.
///
/// Shapes: y, dy, dx [count]. `dx` may be `dy` or `y`.
public func softmaxBackward(
    _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, count: Int, dx: UnsafeMutablePointer<Float>
) {
    precondition(count >= 0, "softmaxBackward: negative count")
    let body = count & ~15
    var acc = SIMD16<Float>()
    var j = 0
    while j < body { acc += load16(y + j) * load16(dy + j); j += 16 }
    var s = acc.sum()
    while j < count { s += y[j] * dy[j]; j += 1 }
    j = 0
    while j < body { store16(load16(y + j) * (load16(dy + j) - s), dx + j); j += 16 }
    while j < count { dx[j] = y[j] * (dy[j] - s); j += 1 }
}

/// Naive reference for `softmaxBackward`.
func softmaxBackwardReference(
    _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, count: Int, dx: UnsafeMutablePointer<Float>
) {
    var s = 0.0
    for j in 0..<count { s += Double(y[j]) * Double(dy[j]) }
    for j in 0..<count { dx[j] = Float(Double(y[j]) * (Double(dy[j]) - s)) }
}
