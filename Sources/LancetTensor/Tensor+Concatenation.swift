extension Tensor {
    /// Matrices with the same columns, one under the other.
    public static func concatenatingRows(_ parts: Tensor...) -> Tensor { concatenatingRows(parts) }

    /// Matrices with the same columns, one under the other.
    public static func concatenatingRows(_ parts: [Tensor]) -> Tensor {
        let columns = parts[0].shape[1]
        precondition(parts.allSatisfy { $0.rank == 2 && $0.shape[1] == columns }, "concatenatingRows: shapes \(parts.map(\.shape))")
        var out = Tensor(uninitializedShape: [parts.reduce(0) { $0 + $1.shape[0] }, columns])
        var row = 0
        for p in parts {
            out.setRows(from: p, at: row)
            row += p.shape[0]
        }
        return out
    }

    /// Matrices with the same rows, side by side.
    public static func concatenatingColumns(_ parts: Tensor...) -> Tensor { concatenatingColumns(parts) }

    /// Matrices with the same rows, side by side.
    public static func concatenatingColumns(_ parts: [Tensor]) -> Tensor {
        let rows = parts[0].shape[0], total = parts.reduce(0) { $0 + $1.shape[1] }
        precondition(parts.allSatisfy { $0.rank == 2 && $0.shape[0] == rows }, "concatenatingColumns: shapes \(parts.map(\.shape))")
        return Tensor(shape: [rows, total]) { out in
            var column = 0
            for p in parts {
                let w = p.shape[1]
                p.withUnsafeBufferPointer { pp in
                    for r in 0..<rows { (out.baseAddress! + r * total + column).update(from: pp.baseAddress! + r * w, count: w) }
                }
                column += w
            }
        }
    }
}
