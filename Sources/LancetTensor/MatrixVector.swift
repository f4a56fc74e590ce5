// The product of one token's activations with a linear layer's weight: decode's kernel.
//
// Decoding one token reads every weight once and does two flops per weight read, so it is bound by memory
// bandwidth, not by arithmetic. The kernel streams through the weight rows in order, a dot product per row,
// and splits the rows over the cores so both pull weights from memory at once. OpenBLAS's sgemm with one
// row does the same work at about half the speed.

/// y = W·x: `weight` is row-major `[rows, columns]`, `x` has `columns` elements, `y` gets `rows`.
///
/// Rows are split over up to `threads` workers (in multiples of 16 rows, none for fewer than 64 rows or 16,384
/// weights per worker). Each y[r] is the dot product of row r with x, summed in 4 × 16 Float lanes with FMA and the lanes
/// added at the end: it differs from sgemm's sum by rounding only (a few ulp times √columns).
public func matrixVector(weight: UnsafePointer<Float>, rows: Int, columns: Int, x: UnsafePointer<Float>,
                         y: UnsafeMutablePointer<Float>, threads: Int = processorCount) {
    precondition(rows >= 0 && columns >= 0, "matrixVector: negative extent")
    splitRows(rows, columns: columns, threads: threads) { matrixVectorRows(weight, matrixRows: rows, columns: columns, x: x, y: y, rows: $0) }
}

/// Runs `body` on contiguous ranges of `0..<rows` on the worker pool: up to `threads` ranges (`rowWorkers`).
func splitRows(_ rows: Int, columns: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    if rows == 0 { return }
    let workers = rowWorkers(rows, columns: columns, threads: threads)
    WorkerPool.shared.run(parts: workers) { part in body(rowRange(part, of: workers, rows: rows)) }
}

/// How many workers share a `[rows, columns]` matrix–vector product: up to `threads`, none with fewer than 64 rows
/// unless it still holds 16,384 weights (below both the hand-off costs more than the rows). The weight count splits a
/// few long rows too: a low-rank linear's inner factor (86–250 rows of 576 or 1,536 columns) would otherwise stream
/// on one core while the others wait.
func rowWorkers(_ rows: Int, columns: Int, threads: Int) -> Int {
    max(1, min(threads, (rows + 15) / 16, max(rows / 64, rows * columns / 16_384)))
}

/// Part `part` of `0..<rows` split into `parts` contiguous ranges in multiples of 16 rows (empty when the rows
/// run out first).
func rowRange(_ part: Int, of parts: Int, rows: Int) -> Range<Int> {
    let panel = 16
    let panels = (rows + panel - 1) / panel
    return min(rows, panels * part / parts * panel)..<min(rows, panels * (part + 1) / parts * panel)
}

/// y = B·(A·x) for one token through a low-rank linear: `a` is `[rank, columns]`, `b` is `[rows, rank]`, `z` gets
/// the `rank` inner values. Both products share one hand-off to the worker pool, the cores splitting A's rows, then
/// (after a barrier) B's; each value is the sum `matrixVector` computes for its row, bit for bit.
public func lowRankMatrixVector(a: UnsafePointer<Float>, rank: Int, columns: Int, b: UnsafePointer<Float>, rows: Int,
                                x: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                                threads: Int = processorCount) {
    precondition(rank >= 0 && columns >= 0 && rows >= 0, "lowRankMatrixVector: negative extent")
    let parts = max(rowWorkers(rank, columns: columns, threads: threads), rowWorkers(rows, columns: rank, threads: threads))
    WorkerPool.shared.run(parts: parts, phases: 2) { phase, part in
        if phase == 0 {
            matrixVectorRows(a, matrixRows: rank, columns: columns, x: x, y: z, rows: rowRange(part, of: parts, rows: rank))
        } else {
            matrixVectorRows(b, matrixRows: rows, columns: rank, x: z, y: y, rows: rowRange(part, of: parts, rows: rows))
        }
    }
}

/// y[r] = W[r, :]·x for the rows `range` of a `[rows, columns]` matrix, one row after the other: a single sequential
/// stream through the weights, which the hardware prefetchers follow best (decode ran 11% faster than with four
/// interleaved rows side by side on the reference machine), summed in four independent 16-lane FMA chains.
///
/// A row whose length is not a multiple of 16 ends in a tail of fewer than 16 columns. Its weights are read with one
/// full 16-lane load that runs into the next row and masked to the tail, against the tail of `x` loaded once per
/// call: the same lanes, hence the same sum, as loading both tails lane by lane, which made the short rows of
/// low-rank factors (86–251 columns) stream at a fifth of the speed of dense rows. A tail whose 16 lanes would
/// run past the matrix's end (the last row's) is copied instead.
@inline(__always)
func matrixVectorRows(_ w: UnsafePointer<Float>, matrixRows: Int, columns: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                      rows range: Range<Int>) {
    let body = columns & ~15, tail = columns - body
    let xTail = tail > 0 ? loadPartial16(x + body, tail) : SIMD16<Float>()
    let mask = laneMask16(tail)
    let end = w + matrixRows * columns
    for r in range {
        let wr = w + r * columns
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var j = 0
        while j + 64 <= body {
            a0.addProduct(load16(wr + j), load16(x + j))
            a1.addProduct(load16(wr + j + 16), load16(x + j + 16))
            a2.addProduct(load16(wr + j + 32), load16(x + j + 32))
            a3.addProduct(load16(wr + j + 48), load16(x + j + 48))
            j += 64
        }
        while j < body { a0.addProduct(load16(wr + j), load16(x + j)); j += 16 }
        if tail > 0 { a1.addProduct(wr + body + 16 <= end ? masked16(load16(wr + body), mask) : loadPartial16(wr + body, tail), xTail) }
        y[r] = ((a0 + a1) + (a2 + a3)).sum()
    }
}

extension SIMD16 where Scalar == Float {
    /// self += a·b lane by lane, fused (one rounding).
    @inline(__always) mutating func addProduct(_ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        self = addingProduct(a, b)
    }
}
