extension Tensor {
    /// ‖M[:, c]‖² of every column c of a matrix, summed in Double row by row.
    public func columnSquaredNorms() -> [Double] {
        precondition(rank == 2, "Tensor.columnSquaredNorms needs rank 2, shape \(shape)")
        let (rows, cols) = (shape[0], shape[1])
        var norms = [Double](repeating: 0, count: cols)
        withUnsafeBufferPointer { p in
            for r in 0..<rows { for c in 0..<cols { norms[c] += Double(p[r * cols + c]) * Double(p[r * cols + c]) } }
        }
        return norms
    }

    /// `self += scale · t` (same element count).
    public mutating func add(_ t: Tensor, scale: Float = 1) {
        precondition(count == t.count, "Tensor.add: \(shape) and \(t.shape)")
        withUnsafeMutableBufferPointer { p in t.withUnsafeBufferPointer { q in axpy(alpha: scale, q.baseAddress!, p.baseAddress!, count: p.count) } }
    }

    /// The sum of the diagonal of a square matrix, in Double.
    public var diagonalSum: Double {
        let n = shape[0]
        return withUnsafeBufferPointer { p in (0..<n).reduce(0.0) { $0 + Double(p[$1 * n + $1]) } }
    }

    /// The ridge of a Gram: λ = `damping` × its mean diagonal (at least 10⁻¹²).
    public func ridgeLambda(damping: Double) -> Double { max(damping * diagonalSum / Double(max(shape[0], 1)), 1e-12) }

    /// A square matrix with `lambda` added to its diagonal.
    public func addingToDiagonal(_ lambda: Double) -> Tensor {
        let n = shape[0]
        var r = self
        r.withUnsafeMutableBufferPointer { p in for i in 0..<n { p[i * n + i] += Float(lambda) } }
        return r
    }

    /// A Gram with its ridge (`ridgeLambda`) added to the diagonal.
    public func ridged(damping: Double) -> Tensor { addingToDiagonal(ridgeLambda(damping: damping)) }
}

extension Tensor {
    /// A matrix with every row scaled to unit length (rows shorter than 10⁻¹² are divided by 10⁻¹², as PyTorch's
    /// `F.normalize` does).
    public func unitRows() -> Tensor {
        let (rows, columns) = (shape[0], shape[1])
        var out = self
        out.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let row = p.baseAddress! + r * columns
                let norm = max(Float(sumOfSquares(row, count: columns).squareRoot()), 1e-12)
                scale(row, by: 1 / norm, count: columns, out: row)
            }
        }
        return out
    }
}
