/// A LAPACK routine reported failure through its `info` value (never a crash).
public enum LinearAlgebraError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The leading minor of order `minorOrder` (1-based) is not positive definite, so the Cholesky
    /// factorisation could not be completed (`xPOTRF` info > 0), or the factor is singular (`xPOTRI`).
    case notPositiveDefinite(routine: String, minorOrder: Int)
    /// An iterative algorithm (divide-and-conquer SVD or eigensolver) failed to converge (info > 0).
    case didNotConverge(routine: String, info: Int)
    /// LAPACK rejected argument number `-info` (info < 0). This usually means a bug in the wrapper.
    case invalidArgument(routine: String, info: Int)
    /// The input holds NaN or infinity, which LAPACK cannot factorise meaningfully.
    case nonFiniteInput(routine: String)

    /// A one-line explanation naming the routine.
    public var description: String {
        switch self {
        case let .notPositiveDefinite(routine, order):
            return "\(routine): matrix is not positive definite (leading minor of order \(order) is not positive)"
        case let .didNotConverge(routine, info):
            return "\(routine): did not converge (info = \(info))"
        case let .invalidArgument(routine, info):
            return "\(routine): argument \(-info) had an illegal value (info = \(info))"
        case let .nonFiniteInput(routine):
            return "\(routine): input contains NaN or infinity"
        }
    }
}
