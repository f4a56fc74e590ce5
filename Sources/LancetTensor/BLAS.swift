import CBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Typed wrappers over OpenBLAS's CBLAS interface. Every routine here is row-major: a matrix with
// `r` rows and leading dimension `ld` keeps element (i, j) at `i * ld + j`, and `ld >= columns`.
// Dimension errors are programmer errors and stop at a `precondition`, before OpenBLAS would print
// an `xerbla` message and silently return.
//
// Tolerance: OpenBLAS sums in Float32 with FMA and a blocking that depends on the shapes and on the
// thread count, so results differ from a naive loop by a few ulp times √k (tests use 1e-4 relative
// to the magnitude of the terms summed).

/// Whether a BLAS operand is used as stored or transposed.
public enum Transpose: Sendable {
    /// Use the matrix as stored.
    case none
    /// Use the transpose of the stored matrix.
    case transpose

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Number of threads OpenBLAS uses for level-3 routines (gemm, syrk, and LAPACK on top of them).
public var threadCount: Int { Int(openblas_get_num_threads()) }

/// The spin of OpenBLAS's idle workers Lancet asks for: 2^18 cycles (about 0.1 ms), unless the environment sets
/// `OPENBLAS_THREAD_TIMEOUT` itself.
///
/// After a threaded call OpenBLAS's workers spin for 2^`OPENBLAS_THREAD_TIMEOUT` cycles before they sleep, 2^28 by
/// default (about 0.1 s). A forward pass alternates gemms with attention and elementwise work that Lancet spreads over
/// the cores itself, a few milliseconds at a time, so with the default the spinning worker holds a core through all
/// of it: a 2048-token prefill ran at 63–73% of the sgemm peak against 80–82% with a short spin (side by side,
/// 2026-12-08). A short spin still covers the gaps between one block's back-to-back gemms.
public let blasIdleSpinExponent = 18

/// Applies `blasIdleSpinExponent` to OpenBLAS's worker pool, once per process and before any BLAS call is made
/// (every BLAS and LAPACK wrapper of this module calls it; the command-line tool calls it first thing): sets the variable when the
/// environment does not, makes OpenBLAS read it again and restarts its workers, which read it when they start.
public func configureBLASThreads() { _ = blasThreadsConfigured }

private let blasThreadsConfigured: Void = {
    guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
    setenv("OPENBLAS_THREAD_TIMEOUT", String(blasIdleSpinExponent), 0)
    openblas_read_env()
    _ = blas_thread_shutdown_()
}()

/// Sets the number of threads OpenBLAS uses; `count` must be at least 1.
///
/// Do not call BLAS from inside `parallelFor` with more than one OpenBLAS thread: both pools would
/// compete for the same cores.
public func setThreadCount(_ count: Int) {
    precondition(count >= 1, "setThreadCount: need at least one thread, got \(count)")
    configureBLASThreads()
    openblas_set_num_threads(Int32(count))
}

@inline(__always) func blasInt(_ v: Int, _ what: String) -> Int32 {
    precondition(v >= 0 && v <= Int(Int32.max), "BLAS: \(what) = \(v) is outside 0...Int32.max")
    return Int32(v)
}

/// C ← α·op(A)·op(B) + β·C, row-major (cblas_sgemm).
///
/// Shapes: op(A) is [m, k], op(B) is [k, n], C is [m, n].
/// Stored A is [m, k] (`transA == .none`) or [k, m]; stored B is [k, n] or [n, k].
/// `lda`, `ldb`, `ldc` are the leading dimensions (row strides) of the stored matrices.
/// With `beta == 0`, C is written without being read (NaNs in C do not propagate).
public func gemm(
    transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let aColumns = transA == .none ? k : m
    let bColumns = transB == .none ? n : k
    precondition(lda >= max(1, aColumns), "gemm: lda \(lda) < columns of stored A \(aColumns)")
    precondition(ldb >= max(1, bColumns), "gemm: ldb \(ldb) < columns of stored B \(bColumns)")
    precondition(ldc >= max(1, n), "gemm: ldc \(ldc) < n \(n)")
    if m == 0 || n == 0 { return }
    configureBLASThreads()
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas,
        blasInt(m, "m"), blasInt(n, "n"), blasInt(k, "k"),
        alpha, a, blasInt(lda, "lda"), b, blasInt(ldb, "ldb"),
        beta, c, blasInt(ldc, "ldc"))
}

/// Naive reference for `gemm` (triple loop, Double accumulation), for tests.
func gemmReference(
    transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let aip = transA == .none ? a[i * lda + p] : a[p * lda + i]
                let bpj = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                sum += Double(aip) * Double(bpj)
            }
            let old = beta == 0 ? 0 : beta * c[i * ldc + j]
            c[i * ldc + j] = alpha * Float(sum) + old
        }
    }
}

/// y ← α·op(A)·x + β·y, row-major (cblas_sgemv).
///
/// Shapes: stored A is [m, n] with row stride `lda`; op(A) = A gives x [n], y [m];
/// op(A) = Aᵀ gives x [m], y [n]. `incx`/`incy` are element strides.
public func gemv(
    trans: Transpose, m: Int, n: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    x: UnsafePointer<Float>, incx: Int = 1,
    beta: Float, y: UnsafeMutablePointer<Float>, incy: Int = 1
) {
    precondition(lda >= max(1, n), "gemv: lda \(lda) < n \(n)")
    precondition(incx != 0 && incy != 0, "gemv: zero increment")
    if m == 0 || n == 0 {
        // BLAS leaves y alone when op(A) is empty in the summed dimension only if alpha terms vanish;
        // scale y explicitly so the result is β·y for every shape.
        let ylen = trans == .none ? m : n
        for i in 0..<ylen { y[i * incy] = beta == 0 ? 0 : beta * y[i * incy] }
        return
    }
    configureBLASThreads()
    cblas_sgemv(
        CblasRowMajor, trans.cblas, blasInt(m, "m"), blasInt(n, "n"), alpha,
        a, blasInt(lda, "lda"), x, Int32(incx), beta, y, Int32(incy))
}

/// The matrix product op(a)·op(b) of two rank-2 tensors.
///
/// Shapes: op(a) is [m, k] (a is [m, k], or [k, m] with `transposeA`), op(b) is [k, n]
/// (b is [k, n], or [n, k] with `transposeB`); the result is [m, n]. With k = 0 the result is zeros.
/// A linear layer with weight W [out, in] on activations X [tokens, in] is `matmul(X, W, transposeB: true)`.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul: needs rank-2 tensors, got \(a.shape) and \(b.shape)")
    let (m, ka) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    precondition(ka == kb, "matmul: inner dimensions differ: op(a) is [\(m), \(ka)], op(b) is [\(kb), \(n)]")
    if m == 0 || n == 0 || ka == 0 { return Tensor(zeros: [m, n]) }
    var out = Tensor(uninitializedShape: [m, n])
    out.withUnsafeMutableBufferPointer { c in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                gemm(
                    transA: transposeA ? .transpose : .none, transB: transposeB ? .transpose : .none,
                    m: m, n: n, k: ka, alpha: 1,
                    a: pa.baseAddress!, lda: a.shape[1], b: pb.baseAddress!, ldb: b.shape[1],
                    beta: 0, c: c.baseAddress!, ldc: n)
            }
        }
    }
    return out
}

/// G ← G + α·XᵀX, keeping G full symmetric (cblas_ssyrk on the lower triangle, then mirrored).
///
/// Shapes: X is [rows, columns] (row-major, contiguous), G is [columns, columns].
/// G must be symmetric on entry: its strict upper triangle is overwritten by the lower one.
/// Because the statistic is a sum over rows, calibration data can be accumulated in chunks.
public func accumulateGram(
    _ x: UnsafePointer<Float>, rows: Int, columns: Int,
    into g: UnsafeMutablePointer<Float>, alpha: Float = 1
) {
    precondition(rows >= 0 && columns >= 0, "accumulateGram: negative extent")
    if rows == 0 || columns == 0 { return }
    configureBLASThreads()
    cblas_ssyrk(
        CblasRowMajor, CblasLower, CblasTrans,
        blasInt(columns, "columns"), blasInt(rows, "rows"),
        alpha, x, blasInt(columns, "lda"), 1, g, blasInt(columns, "ldg"))
    mirrorLowerToUpper(g, n: columns)
}

/// Copies the strict lower triangle of the row-major [n, n] matrix `g` onto its upper triangle.
/// Tiled so that both the row-wise reads and the column-wise writes stay in cache.
public func mirrorLowerToUpper(_ g: UnsafeMutablePointer<Float>, n: Int) {
    let tile = 32
    for ib in stride(from: 0, to: n, by: tile) {
        for jb in stride(from: 0, through: ib, by: tile) {
            for i in ib..<min(ib + tile, n) {
                for j in jb..<min(jb + tile, i) {
                    g[j * n + i] = g[i * n + j]  // upper (j, i) ← lower (i, j)
                }
            }
        }
    }
}

/// G ← G + α·XᵀX for tensors: X is [rows, columns], G is [columns, columns] and symmetric.
public func accumulateGram(_ x: Tensor, into g: inout Tensor, alpha: Float = 1) {
    precondition(x.rank == 2, "accumulateGram: X must be rank 2, got \(x.shape)")
    let c = x.shape[1]
    precondition(g.shape == [c, c], "accumulateGram: G must be [\(c), \(c)], got \(g.shape)")
    g.withUnsafeMutableBufferPointer { pg in
        x.withUnsafeBufferPointer { px in
            guard let base = px.baseAddress, let gb = pg.baseAddress else { return }
            accumulateGram(base, rows: x.shape[0], columns: c, into: gb, alpha: alpha)
        }
    }
}

/// XᵀX of a [rows, columns] tensor, as a new full symmetric [columns, columns] tensor.
public func gram(_ x: Tensor) -> Tensor {
    precondition(x.rank == 2, "gram: X must be rank 2, got \(x.shape)")
    var g = Tensor(zeros: [x.shape[1], x.shape[1]])
    accumulateGram(x, into: &g)
    return g
}
