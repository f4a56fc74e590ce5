/// y = down · (silu(gate·x) ⊙ up·x) for one token: a SwiGLU feed-forward in one hand-off to the worker pool.
///
/// `gate` and `up` are row-major `[width, columns]`, `down` is `[rows, width]`, `x` has `columns` elements, `y` gets
/// `rows`. The cores split the width (each computes its gate and up rows and their SwiGLU values), then, after a
/// barrier, the down projection's rows; three `matrixVector` calls and a `swiglu` would hand off three times. Every
/// value is the one those calls compute, bit for bit (the same sum per row, the same element-wise gate).
public func swiGLUMatrixVector(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, width: Int, columns: Int,
                               down: UnsafePointer<Float>, rows: Int, x: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, threads: Int = processorCount) {
    precondition(width >= 0 && columns >= 0 && rows >= 0, "swiGLUMatrixVector: negative extent")
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 3 * width))
    defer { scratch.deallocate() }
    let g = scratch, u = scratch + width, a = scratch + 2 * width
    let parts = max(rowWorkers(2 * width, columns: columns, threads: threads), rowWorkers(rows, columns: width, threads: threads))
    WorkerPool.shared.run(parts: parts, phases: 2) { phase, part in
        if phase == 0 {
            let range = rowRange(part, of: parts, rows: width)
            matrixVectorRows(gate, matrixRows: width, columns: columns, x: x, y: g, rows: range)
            matrixVectorRows(up, matrixRows: width, columns: columns, x: x, y: u, rows: range)
            swiglu(gate: g + range.lowerBound, up: u + range.lowerBound, count: range.count, out: a + range.lowerBound)
        } else {
            matrixVectorRows(down, matrixRows: rows, columns: width, x: a, y: y, rows: rowRange(part, of: parts, rows: rows))
        }
    }
}
