import CBLAS

// Dense factorisations through LAPACKE (OpenBLAS's LAPACK), in Float32.
//
// Layout: all routines call LAPACKE in **column-major** mode on the row-major storage of `Tensor`,
// so LAPACK sees the transpose of each matrix. That costs no copy:
// - a symmetric matrix is its own transpose; LAPACK's upper triangle ('U') is our lower triangle,
//   and a column-major upper Cholesky factor U (A = UᵀU) is, read row-major, the lower factor L = Uᵀ;
// - the SVD of Aᵀ = U'ΣV'ᵀ gives A = V'ΣU'ᵀ, so LAPACK's U' read row-major is our Vᵀ and its V'ᵀ
//   read row-major is our U.
// Right-hand sides of `solveSPD` with several columns are transposed into and out of LAPACK's layout.
//
// Every LAPACK `info != 0` is thrown as a `LinearAlgebraError`; shape mismatches are preconditions.
// Tolerances (Float32, well-conditioned n ≤ a few hundred): reconstruction residuals ‖A − …‖/‖A‖ are
// around 1e-6; solve residuals grow with the condition number κ as roughly κ·1e-7.

/// LAPACKE's `lapack_int` (a C macro, so not imported): `int32_t` in the LP64 build linked here.
/// An ILP64 build would make every LAPACKE call below fail to type-check rather than misbehave.
private typealias LapackInt = Int32

@inline(__always) private func lapackChar(_ c: Unicode.Scalar) -> CChar { CChar(UInt8(ascii: c)) }

@inline(__always) private func lapackInt(_ v: Int, _ routine: String) -> LapackInt {
    precondition(v >= 0 && v <= Int(LapackInt.max), "\(routine): dimension \(v) exceeds LAPACK's integer range")
    return LapackInt(v)
}

private func requireFinite(_ t: Tensor, _ routine: String) throws {
    let finite = t.withUnsafeBufferPointer { buffer in buffer.allSatisfy { $0.isFinite } }
    if !finite { throw LinearAlgebraError.nonFiniteInput(routine: routine) }
}

/// Maps a factorisation's `info` to an error: negative is a bad argument, positive is `positive`.
private func check(_ info: LapackInt, _ routine: String, positive: (Int) -> LinearAlgebraError) throws {
    if info < 0 { throw LinearAlgebraError.invalidArgument(routine: routine, info: Int(info)) }
    if info > 0 { throw positive(Int(info)) }
}

private func requireSquare(_ a: Tensor, _ routine: String) -> Int {
    precondition(a.rank == 2 && a.shape[0] == a.shape[1], "\(routine): needs a square matrix, got \(a.shape)")
    return a.shape[0]
}

/// Factorises `a` in place with spotrf so that its lower triangle (row-major) holds L, A = L·Lᵀ.
/// The strict upper triangle is left as it was.
private func factorLowerInPlace(_ a: inout Tensor, n: Int) throws {
    configureBLASThreads()
    try a.withUnsafeMutableBufferPointer { p in
        let info = LAPACKE_spotrf(LAPACK_COL_MAJOR, lapackChar("U"), lapackInt(n, "spotrf"), p.baseAddress, LapackInt(max(1, n)))
        try check(info, "spotrf") { .notPositiveDefinite(routine: "spotrf", minorOrder: $0) }
    }
}

/// The Cholesky factor of a symmetric positive-definite matrix (spotrf).
///
/// Shapes: `a` is [n, n]; only its lower triangle is read. Returns L [n, n] lower triangular with
/// A = L·Lᵀ, or with `upper` the factor U = Lᵀ with A = Uᵀ·U; the other triangle is zero.
/// Throws `.notPositiveDefinite` (with the order of the failing leading minor) for indefinite input.
public func cholesky(_ a: Tensor, upper: Bool = false) throws -> Tensor {
    let n = requireSquare(a, "cholesky")
    if n == 0 { return a }
    try requireFinite(a, "spotrf")
    var l = a
    try factorLowerInPlace(&l, n: n)
    l.withUnsafeMutableBufferPointer { p in
        for i in 0..<n { for j in (i + 1)..<n { p[i * n + j] = 0 } }
    }
    return upper ? l.transposed() : l
}

/// Solves A·X = B for symmetric positive-definite A (spotrf, then spotrs).
///
/// Shapes: `a` is [n, n] (lower triangle read); `b` is [n] or [n, r]; the result has `b`'s shape.
/// Throws `.notPositiveDefinite` if A is not positive definite.
public func solveSPD(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    configureBLASThreads()
    let n = requireSquare(a, "solveSPD")
    precondition((b.rank == 1 || b.rank == 2) && b.shape[0] == n, "solveSPD: b must be [\(n)] or [\(n), r], got \(b.shape)")
    let r = b.rank == 1 ? 1 : b.shape[1]
    if n == 0 || r == 0 { return b }
    try requireFinite(a, "spotrf")
    try requireFinite(b, "spotrs")
    var factor = a
    try factorLowerInPlace(&factor, n: n)
    // Column-major n×r right-hand side: for r == 1 the storage already is; otherwise transpose.
    var rhs = r == 1 ? b : b.transposed()
    try factor.withUnsafeBufferPointer { f in
        try rhs.withUnsafeMutableBufferPointer { x in
            let info = LAPACKE_spotrs(
                LAPACK_COL_MAJOR, lapackChar("U"), lapackInt(n, "spotrs"), lapackInt(r, "spotrs"),
                f.baseAddress, LapackInt(n), x.baseAddress, LapackInt(n))
            try check(info, "spotrs") { .invalidArgument(routine: "spotrs", info: $0) }
        }
    }
    return r == 1 ? rhs : rhs.transposed()
}

/// The inverse of a symmetric positive-definite matrix (spotrf, then spotri), full and symmetric.
///
/// Shapes: `a` is [n, n] (lower triangle read); the result is [n, n].
/// Prefer `solveSPD` when the inverse is only applied to vectors.
public func spdInverse(_ a: Tensor) throws -> Tensor {
    configureBLASThreads()
    let n = requireSquare(a, "spdInverse")
    if n == 0 { return a }
    try requireFinite(a, "spotrf")
    var inv = a
    try factorLowerInPlace(&inv, n: n)
    try inv.withUnsafeMutableBufferPointer { p in
        let info = LAPACKE_spotri(LAPACK_COL_MAJOR, lapackChar("U"), lapackInt(n, "spotri"), p.baseAddress, LapackInt(n))
        try check(info, "spotri") { .notPositiveDefinite(routine: "spotri", minorOrder: $0) }
        mirrorLowerToUpper(p.baseAddress!, n: n)
    }
    return inv
}

/// The thin singular value decomposition A = U·diag(s)·Vᵀ (divide and conquer, sgesdd).
///
/// Shapes: `a` is [m, n]; with k = min(m, n), U is [m, k] with orthonormal columns, `s` holds k
/// non-negative values in descending order, Vᵀ is [k, n] with orthonormal rows. Rank-deficient input
/// is fine (trailing singular values are ~0 and their vectors complete an orthonormal basis).
/// Empty input gives k = 0. Throws `.didNotConverge` if sgesdd fails to converge.
public func svd(_ a: Tensor) throws -> (u: Tensor, s: [Float], vt: Tensor) {
    configureBLASThreads()
    precondition(a.rank == 2, "svd: needs a matrix, got \(a.shape)")
    let (m, n) = (a.shape[0], a.shape[1])
    let k = min(m, n)
    if k == 0 { return (Tensor(zeros: [m, 0]), [], Tensor(zeros: [0, n])) }
    try requireFinite(a, "sgesdd")
    var work = a  // destroyed by sgesdd
    var u = Tensor(zeros: [m, k])  // LAPACK's V'ᵀ (k×m column-major)
    var vt = Tensor(zeros: [k, n])  // LAPACK's U' (n×k column-major)
    var s = [Float](repeating: 0, count: k)
    try work.withUnsafeMutableBufferPointer { pa in
        try u.withUnsafeMutableBufferPointer { pu in
            try vt.withUnsafeMutableBufferPointer { pvt in
                try s.withUnsafeMutableBufferPointer { ps in
                    // LAPACK factorises Aᵀ: n×m column-major with lda = n.
                    let info = LAPACKE_sgesdd(
                        LAPACK_COL_MAJOR, lapackChar("S"), lapackInt(n, "sgesdd"), lapackInt(m, "sgesdd"),
                        pa.baseAddress, LapackInt(n), ps.baseAddress,
                        pvt.baseAddress, LapackInt(n),  // U' is n×k, ldu = n
                        pu.baseAddress, LapackInt(k))  // V'ᵀ is k×m, ldvt = k
                    try check(info, "sgesdd") { .didNotConverge(routine: "sgesdd", info: $0) }
                }
            }
        }
    }
    return (u, s, vt)
}

/// Eigenvalues and eigenvectors of a symmetric matrix (divide and conquer, ssyevd).
///
/// Shapes: `a` is [n, n]; only its lower triangle is read. `values` holds n eigenvalues in
/// **ascending** order; `vectors` is [n, n] with the unit eigenvector of `values[j]` in **column** j,
/// so A = V·diag(values)·Vᵀ. Throws `.didNotConverge` if ssyevd fails to converge.
public func symmetricEigen(_ a: Tensor) throws -> (values: [Float], vectors: Tensor) {
    configureBLASThreads()
    let n = requireSquare(a, "symmetricEigen")
    if n == 0 { return ([], a) }
    try requireFinite(a, "ssyevd")
    var v = a
    var w = [Float](repeating: 0, count: n)
    try v.withUnsafeMutableBufferPointer { pv in
        try w.withUnsafeMutableBufferPointer { pw in
            let info = LAPACKE_ssyevd(
                LAPACK_COL_MAJOR, lapackChar("V"), lapackChar("U"), lapackInt(n, "ssyevd"),
                pv.baseAddress, LapackInt(n), pw.baseAddress)
            try check(info, "ssyevd") { .didNotConverge(routine: "ssyevd", info: $0) }
        }
    }
    // LAPACK wrote eigenvectors as column-major columns, i.e. as our rows: transpose.
    return (w, v.transposed())
}

/// Solves X·L = B for X with L lower triangular (strsm): X = B·L⁻¹, without forming the inverse.
///
/// Shapes: `l` is [n, n] (only its lower triangle is read, its diagonal must be non-zero); `b` is [m, n];
/// the result is [m, n]. The whitened factorisations of low-rank compression fold a Cholesky factor back
/// into their inner factor with it.
public func solveLowerTriangularRight(_ l: Tensor, _ b: Tensor) -> Tensor {
    configureBLASThreads()
    let n = requireSquare(l, "solveLowerTriangularRight")
    precondition(b.rank == 2 && b.shape[1] == n, "solveLowerTriangularRight: right-hand side \(b.shape) against [\(n), \(n)]")
    var x = b
    let m = b.shape[0]
    if m == 0 || n == 0 { return x }
    l.withUnsafeBufferPointer { lp in
        x.withUnsafeMutableBufferPointer { xp in
            cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, Int32(m), Int32(n), 1,
                        lp.baseAddress, Int32(n), xp.baseAddress, Int32(n))
        }
    }
    return x
}
