// Prefill's attention: many queries against the keys before them, without BLAS and without a score matrix larger
// than the cache.
//
// The BLAS formulation (scores = Q·Kᵀ for a tile of 256 queries, softmax, then P·V) wrote each tile's scores — up to
// 768 × 2048 floats for SmolLM2's KV groups — to memory beyond the L2 cache, read and wrote them again in the
// softmax and read them a third time, packed, in the second gemm; and sgemm with k = 64 or n = 64 spends much of its
// time packing. That was 32–42% of a 2048-token prefill at about a third of the linears' GFLOP/s. Here a work item
// is a tile of `queryTileRows` queries of one KV group: their scores (at most 48 × keys floats) stay in the L2
// cache between the three steps, and both products run in one register microkernel — six query rows by sixteen
// columns — reading the keys and the values from packed copies (keys transposed into panels of 16 keys, values in
// panels of 16 dimensions), made once per call for every tile.

/// Queries per work item of `attendQueryTile` (a multiple of `attentionRowBlock`).
public let queryTileRows = 48

/// Query rows that share one pass over the keys in `attendQueryTile`'s microkernel: a value reaches, through the
/// zero probabilities of the positions it hides from, every query of the block that holds a query seeing it (so a
/// NaN value makes those queries NaN, earlier ones of the block included).
public let attentionRowBlock = 6

/// Lanes of a packed key panel: `packKeys` lays 16 consecutive keys' dimensions side by side.
public let keyPanelWidth = 16

/// Floats `packKeys` writes for `count` keys of `dimensions` each: whole panels of `keyPanelWidth` keys.
public func packedKeysCount(keys count: Int, dimensions d: Int) -> Int {
    (count + keyPanelWidth - 1) / keyPanelWidth * keyPanelWidth * d
}

/// Packs `count` keys (row `j` at `keys + j·stride`, `dimensions` floats) into panels of `keyPanelWidth` keys:
/// panel `p` holds, for each dimension `c`, the 16 keys `16p ..< 16p + 16` side by side, at
/// `packed[p·16·d + c·16 + lane]`. Lanes past `count` are zeros.
public func packKeys(_ keys: UnsafePointer<Float>, stride: Int, count: Int, dimensions d: Int, into packed: UnsafeMutablePointer<Float>) {
    let panels = (count + keyPanelWidth - 1) / keyPanelWidth
    for p in 0..<panels {
        let panel = packed + p * keyPanelWidth * d
        let keysHere = min(keyPanelWidth, count - p * keyPanelWidth)
        if keysHere < keyPanelWidth { panel.update(repeating: 0, count: keyPanelWidth * d) }
        for lane in 0..<keysHere {
            let key = keys + (p * keyPanelWidth + lane) * stride
            for c in 0..<d { panel[c * keyPanelWidth + lane] = key[c] }
        }
    }
}

/// Floats `packValues` writes for `count` values of `dimensions` each: 16 lanes per value and panel.
public func packedValuesCount(values count: Int, dimensions d: Int) -> Int {
    (d + keyPanelWidth - 1) / keyPanelWidth * keyPanelWidth * count
}

/// Packs `count` values (row `j` at `values + j·stride`, `dimensions` floats) into panels of 16 dimensions: panel
/// `c` holds dimensions `16c ..< 16c + 16` of every value in order, at `packed[(c·count + j)·16 + lane]`. Lanes past
/// `dimensions` are zeros.
public func packValues(_ values: UnsafePointer<Float>, stride: Int, count: Int, dimensions d: Int, into packed: UnsafeMutablePointer<Float>) {
    let panels = (d + keyPanelWidth - 1) / keyPanelWidth
    for c in 0..<panels {
        let lanes = min(keyPanelWidth, d - c * keyPanelWidth)
        let panel = packed + c * count * keyPanelWidth
        for j in 0..<count {
            let to = panel + j * keyPanelWidth
            to.update(from: values + j * stride + c * keyPanelWidth, count: lanes)
            if lanes < keyPanelWidth { (to + lanes).update(repeating: 0, count: keyPanelWidth - lanes) }
        }
    }
}

/// Causal attention of `rows` consecutive queries of one KV group (the `group` query heads sharing one KV head),
/// the query at row `r` sitting at position `firstPosition + r` of its sequence and seeing the keys
/// `[max(0, position + 1 − window), position + 1)` (all earlier ones without a window).
///
/// - `queries`: the first query row; head `h` of row `r` at `queries + r·queryStride + h·d`.
/// - `packedKeys`, `packedValues`: the sequence's `keys` keys and values for this KV head, packed by `packKeys` and
///   `packValues` from position 0 (at least up to the last query's position).
/// - `scores`: scratch of `queryTileRows × scoreStride` floats, `scoreStride` at least `keys` rounded up to 16.
/// - `out`: head `h` of row `r` written at `out + r·outStride + h·d`.
///
/// Each score is `scale · Σ_c q_c·k_c` summed in order over the dimensions; the weights are
/// `exponentiateScores(inPlace:count:)` of the visible scores (softmax before its normalisation); each output is
/// `(Σ_j e_j·v_j) · (1 / Σ_j e_j)`, the first sum in order over the keys from the row block's first visible one (the
/// zeros of positions a row does not see add nothing). So the result does not depend on the number of cores or on how
/// the tiles are handed out. A NaN score makes its row's output NaN; a row that sees no finite score (all −∞) gets
/// NaN too, as 0 / 0 (a causal row always sees its own key, so only −∞ scores do it).
public func attendQueryTile(queries: UnsafePointer<Float>, queryStride: Int, rows: Int, firstPosition: Int, window: Int?,
                            group: Int, packedKeys: UnsafePointer<Float>, packedValues: UnsafePointer<Float>, keys: Int,
                            dimensions d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, scoreStride: Int,
                            out: UnsafeMutablePointer<Float>, outStride: Int) {
    precondition(rows > 0 && rows <= queryTileRows, "attendQueryTile: \(rows) rows, at most \(queryTileRows)")
    func firstVisible(_ position: Int) -> Int { window.map { max(0, position + 1 - $0) } ?? 0 }
    let scaled = SIMD16<Float>(repeating: scale)
    for h in 0..<group {
        let qh = queries + h * d, oh = out + h * d
        var block = 0
        while block < rows {
            let n = min(attentionRowBlock, rows - block)
            let first = firstPosition + block
            let lo = firstVisible(first), hi = first + n    // the keys some query of the block sees
            // Rows past the tile's end repeat its last row (read, never stored).
            let last = rows - 1 - block
            let queryRows = SixRows(qh + block * queryStride, stride: queryStride, last: last)
            let lines = scores + block * scoreStride
            for p in (lo / keyPanelWidth)..<((hi + keyPanelWidth - 1) / keyPanelWidth) {
                let a = queryRows.panelProduct(packedKeys + p * keyPanelWidth * d, over: 0..<d)
                let column = lines + p * keyPanelWidth
                for r in 0..<attentionRowBlock { store16(a[r] * scaled, column + r * scoreStride) }
            }
            // Each row's exponentials exp(s − max) over the keys it sees (zeros elsewhere) and their reciprocal sum.
            var inverse = SIMD8<Float>()
            for r in 0..<n {
                let line = lines + r * scoreStride
                let seen = firstVisible(first + r)..<(first + r + 1)
                if seen.lowerBound > lo { (line + lo).update(repeating: 0, count: seen.lowerBound - lo) }
                let sum = exponentiateScores(inPlace: line + seen.lowerBound, count: seen.count)
                inverse[r] = 1 / sum
                if seen.upperBound < hi { (line + seen.upperBound).update(repeating: 0, count: hi - seen.upperBound) }
            }
            let weightRows = SixRows(UnsafePointer(lines), stride: scoreStride, last: last)
            var c = 0
            while c < d {
                let lanes = min(keyPanelWidth, d - c)
                let a = weightRows.panelProduct(packedValues + c * keys, over: lo..<hi)
                for r in 0..<n {
                    let o = oh + (block + r) * outStride + c, normalised = a[r] * inverse[r]
                    if lanes == keyPanelWidth { store16(normalised, o) } else { storePartial16(normalised, o, lanes) }
                }
                c += lanes
            }
            block += n
        }
    }
}

/// Replaces the scores `row[0..<count]` by `exp(score − max)` and returns their sum: `exponentiateShifted` with
/// `expNonPositive16` (weights below e⁻⁸⁷·³³ of the largest become 0). A NaN makes the row and the sum NaN; a row
/// of −∞ becomes zeros with sum 0. The loop is `exponentiateShifted`'s, written again: passing the exponential as a
/// function value or a generic type left it out of line, one call per 16 lanes (one 2048-token attention layer took
/// 36–43 ms against 30–34 ms written out, 2026-12-08).
func exponentiateScores(inPlace row: UnsafeMutablePointer<Float>, count: Int) -> Float {
    let body = count & ~15, rest = count - body
    var vmax = SIMD16<Float>(repeating: -.infinity)
    var j = 0
    while j < body { vmax = lanewiseMax(vmax, load16(row + j)); j += 16 }
    if rest > 0 { vmax = lanewiseMax(vmax, loadPartial16(row + j, rest, fill: -.infinity)) }
    let m = maxLane(vmax)
    if m.isNaN || m == -.infinity {
        row.update(repeating: m.isNaN ? .nan : 0, count: count)
        return m.isNaN ? .nan : 0
    }
    let shift = SIMD16<Float>(repeating: m)
    var sum = SIMD16<Float>()
    j = 0
    while j < body {
        let e = expNonPositive16(load16(row + j) - shift)
        store16(e, row + j)
        sum += e
        j += 16
    }
    if rest > 0 {
        let e = expNonPositive16(loadPartial16(row + j, rest, fill: -.infinity) - shift)  // padding lanes give 0
        storePartial16(e, row + j, rest)
        sum += e
    }
    return sum.sum()
}

/// Six rows of a matrix `A` read by the attention microkernel; rows past `last` repeat row `last`.
private struct SixRows {
    let r0, r1, r2, r3, r4, r5: UnsafePointer<Float>

    init(_ first: UnsafePointer<Float>, stride: Int, last: Int) {
        func row(_ r: Int) -> UnsafePointer<Float> { first + min(r, last) * stride }
        (r0, r1, r2, r3, r4, r5) = (row(0), row(1), row(2), row(3), row(4), row(5))
    }

    /// The microkernel: for each of the six rows, Σ_{i ∈ range} A[r][i] · panel[16i ..< 16i + 16], summed in order
    /// of i in one FMA chain per lane (scores: A the queries, the panel 16 packed keys; outputs: A the
    /// probabilities, the panel 16 dimensions of the packed values).
    @inline(never)
    func panelProduct(_ panel: UnsafePointer<Float>, over range: Range<Int>) -> SixSums {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>(), a4 = SIMD16<Float>(), a5 = SIMD16<Float>()
        for i in range {
            let b = load16(panel + i * keyPanelWidth)
            a0.addProduct(SIMD16(repeating: r0[i]), b); a1.addProduct(SIMD16(repeating: r1[i]), b)
            a2.addProduct(SIMD16(repeating: r2[i]), b); a3.addProduct(SIMD16(repeating: r3[i]), b)
            a4.addProduct(SIMD16(repeating: r4[i]), b); a5.addProduct(SIMD16(repeating: r5[i]), b)
        }
        return SixSums(a0, a1, a2, a3, a4, a5)
    }
}

/// The six 16-lane sums of `SixRows.panelProduct`, by row.
private struct SixSums {
    let sums: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    init(_ a0: SIMD16<Float>, _ a1: SIMD16<Float>, _ a2: SIMD16<Float>, _ a3: SIMD16<Float>, _ a4: SIMD16<Float>, _ a5: SIMD16<Float>) {
        sums = (a0, a1, a2, a3, a4, a5)
    }

    @inline(__always) subscript(_ r: Int) -> SIMD16<Float> {
        switch r {
        case 0: sums.0
        case 1: sums.1
        case 2: sums.2
        case 3: sums.3
        case 4: sums.4
        default: sums.5
        }
    }
}
