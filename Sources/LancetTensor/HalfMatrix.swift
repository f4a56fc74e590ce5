import CKernels

// 16-bit weights for the runtime: half the bytes per decoded token, for users who want speed over exactness.
//
// A `HalfMatrix` keeps a weight matrix in IEEE half precision (f16: 5 exponent bits, 10 mantissa bits) or in
// bfloat16 (bf16: Float's 8 exponent bits, 7 mantissa bits), rounded to nearest even from Float. One row of
// activations (decode) is multiplied by streaming the 16-bit rows and widening 16 lanes at a time (F16C's
// vcvtph2ps for f16, a shift for bf16); more rows (prefill) widen the matrix to Float a tile of rows at a time
// and call sgemm, so prefill keeps the gemm's speed and decode gets the halved bandwidth.

/// A 16-bit floating-point storage format.
public enum HalfFormat: String, Sendable, CaseIterable, Codable {
    /// IEEE 754 binary16.
    case f16
    /// bfloat16: the upper half of a Float.
    case bf16

    /// The 16 bits nearest to `x` (ties to even; f16 overflows to ±∞; NaN stays NaN).
    @inline(__always) public func bits(_ x: Float) -> UInt16 {
        switch self {
        case .f16: return Float16(x).bitPattern
        case .bf16:
            if x.isNaN { return UInt16(truncatingIfNeeded: x.bitPattern >> 16) | 0x0040 }
            let b = x.bitPattern
            return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
        }
    }

    /// The Float value of 16 bits.
    @inline(__always) public func value(_ bits: UInt16) -> Float {
        switch self {
        case .f16: return Float(Float16(bitPattern: bits))
        case .bf16: return Float(bitPattern: UInt32(bits) << 16)
        }
    }
}

/// A row-major `[rows, columns]` matrix of 16-bit floats: a linear layer's weight at half the bytes.
public final class HalfMatrix: @unchecked Sendable {
    /// Rows (output features).
    public let rows: Int
    /// Columns (input features).
    public let columns: Int
    /// The storage format.
    public let format: HalfFormat
    let bits: UnsafePointer<UInt16>
    /// What keeps `bits` valid when the matrix shares a tensor's 16-bit values (nil: the matrix owns them).
    private let owner: AnyObject?

    /// `matrix` (rank 2) in `format`: a tensor that holds 16-bit values in `format` (`Tensor.halfSource`, an F16
    /// or BF16 weight of a loaded file) is shared as it is, not widened or copied; any other is rounded (ties to
    /// even) from its Float values, or from its 16-bit values when they are in the other format.
    public init(_ matrix: Tensor, format: HalfFormat) {
        precondition(matrix.rank == 2, "HalfMatrix: needs a matrix, got shape \(matrix.shape)")
        rows = matrix.shape[0]
        columns = matrix.shape[1]
        self.format = format
        if let source = matrix.halfSource, source.format == format {
            bits = source.bits
            owner = source.owner
            return
        }
        let owned = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, matrix.count))
        if let source = matrix.unwidenedHalfSource {
            for i in 0..<matrix.count { owned[i] = format.bits(source[i]) }
        } else {
            matrix.withUnsafeBufferPointer { p in
                switch format {
                case .f16: for i in p.indices { owned[i] = HalfFormat.f16.bits(p[i]) }
                case .bf16: for i in p.indices { owned[i] = HalfFormat.bf16.bits(p[i]) }
                }
            }
        }
        bits = UnsafePointer(owned)
        owner = nil
    }

    deinit { if owner == nil { UnsafeMutablePointer(mutating: bits).deallocate() } }

    /// Whether the matrix uses a tensor's own 16-bit values (no copy) rather than bits of its own.
    public var sharesTensorValues: Bool { owner != nil }

    /// Bytes the matrix occupies.
    public var byteCount: Int { 2 * rows * columns }

    /// The matrix widened to Float (exactly: every 16-bit value is a Float).
    public func widened() -> Tensor {
        var t = Tensor(uninitializedShape: [rows, columns])
        t.withUnsafeMutableBufferPointer { widenRows(0..<rows, into: $0.baseAddress!) }
        return t
    }

    /// Rows `range` widened into `out` (`range.count × columns` floats), on the cores.
    private func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let start = bits + range.lowerBound * columns
        parallelFor(0..<(range.count * columns), minimumChunkSize: 1 << 16) { r in
            widen(start + r.lowerBound, format: format, count: r.count, out: out + r.lowerBound)
        }
    }

    /// Float scratch for one tile of widened rows when more than one row of activations is multiplied (16 MiB).
    public static let tileBytes = 16 << 20

    /// `x·Wᵀ` for `x` `[t, columns]`: one row by the 16-bit matrix–vector kernel; more by sgemm on the matrix widened a
    /// tile of rows at a time (at most `tileBytes` of Floats, so a large output head is never widened whole).
    public func multiply(_ x: Tensor) -> Tensor { multiply(x, tileBytes: Self.tileBytes) }

    /// `multiply` with tiles of at most `tileBytes` of widened rows. One tile gives sgemm's product by the whole widened
    /// matrix bit for bit; several give the same sums up to rounding (sgemm blocks each call by its shape).
    func multiply(_ x: Tensor, tileBytes: Int) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == columns, "HalfMatrix: input \(x.shape) against [\(rows), \(columns)]")
        let t = x.shape[0]
        guard t > 0, rows > 0, columns > 0 else { return Tensor(zeros: [t, rows]) }
        guard t == 1 else {
            let tile = min(rows, max(16, tileBytes / (MemoryLayout<Float>.stride * columns)))
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * columns)
            defer { scratch.deallocate() }
            var y = Tensor(uninitializedShape: [t, rows])
            y.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { xp in
                for first in stride(from: 0, to: rows, by: tile) {
                    let n = min(tile, rows - first)
                    widenRows(first..<(first + n), into: scratch)
                    gemm(transA: .none, transB: .transpose, m: t, n: n, k: columns, alpha: 1, a: xp.baseAddress!, lda: columns,
                         b: scratch, ldb: columns, beta: 0, c: yp.baseAddress! + first, ldc: rows)
                }
            }}
            return y
        }
        var y = Tensor(uninitializedShape: [1, rows])
        y.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { xp in
            halfMatrixVector(bits, format: format, rows: rows, columns: columns, x: xp.baseAddress!, y: yp.baseAddress!)
        }}
        return y
    }
}

/// 16 lanes of 16-bit values widened to Float.
@inline(__always) func loadHalf16(_ p: UnsafePointer<UInt16>, format: HalfFormat) -> SIMD16<Float> {
    switch format {
    case .f16: return SIMD16<Float>(lowHalf: lancet_f16x8_to_f32(p), highHalf: lancet_f16x8_to_f32(p + 8))
    case .bf16: return SIMD16<Float>(lowHalf: lancet_bf16x8_to_f32(p), highHalf: lancet_bf16x8_to_f32(p + 8))
    }
}

/// out[i] = value(bits[i]) for `count` elements.
func widen(_ p: UnsafePointer<UInt16>, format: HalfFormat, count: Int, out: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 16 <= count { store16(loadHalf16(p + i, format: format), out + i); i += 16 }
    while i < count { out[i] = format.value(p[i]); i += 1 }
}

/// y = W·x with W in 16 bits: `matrixVector`'s row split and summation over 16-bit rows.
func halfMatrixVector(_ w: UnsafePointer<UInt16>, format: HalfFormat, rows: Int, columns: Int, x: UnsafePointer<Float>,
                      y: UnsafeMutablePointer<Float>, threads: Int = processorCount) {
    splitRows(rows, columns: columns, threads: threads) { range in
        switch format {
        case .f16: halfRows(w, format: .f16, matrixRows: rows, columns: columns, x: x, y: y, rows: range)
        case .bf16: halfRows(w, format: .bf16, matrixRows: rows, columns: columns, x: x, y: y, rows: range)
        }
    }
}

/// `matrixVectorRows` over 16-bit rows, the tail of a row masked the same way (or widened by a copy at the matrix's
/// end).
@inline(__always)
func halfRows(_ w: UnsafePointer<UInt16>, format: HalfFormat, matrixRows: Int, columns: Int, x: UnsafePointer<Float>,
              y: UnsafeMutablePointer<Float>, rows range: Range<Int>) {
    let body = columns & ~15, tail = columns - body
    let xTail = tail > 0 ? loadPartial16(x + body, tail) : SIMD16<Float>()
    let mask = laneMask16(tail)
    let end = w + matrixRows * columns
    for r in range {
        let wr = w + r * columns
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var j = 0
        while j + 64 <= body {
            a0.addProduct(loadHalf16(wr + j, format: format), load16(x + j))
            a1.addProduct(loadHalf16(wr + j + 16, format: format), load16(x + j + 16))
            a2.addProduct(loadHalf16(wr + j + 32, format: format), load16(x + j + 32))
            a3.addProduct(loadHalf16(wr + j + 48, format: format), load16(x + j + 48))
            j += 64
        }
        while j < body { a0.addProduct(loadHalf16(wr + j, format: format), load16(x + j)); j += 16 }
        if tail > 0 {
            let wt: SIMD16<Float>
            if wr + body + 16 <= end {
                wt = masked16(loadHalf16(wr + body, format: format), mask)
            } else {
                var widened = SIMD16<Float>()
                for i in 0..<tail { widened[i] = format.value(wr[body + i]) }
                wt = widened
            }
            a1.addProduct(wt, xTail)
        }
        y[r] = ((a0 + a1) + (a2 + a3)).sum()
    }
}
