import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The number of online processors, read once (sysconf(_SC_NPROCESSORS_ONLN), at least 1).
public let processorCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

/// Splits `range` into contiguous chunks and runs `body` on them concurrently
/// (DispatchQueue.concurrentPerform), returning when all are done.
///
/// - `chunks`: number of pieces; defaults to `processorCount`.
/// - `minimumChunkSize`: no chunk is smaller than this (except when the range itself is); a range of
///   fewer than 2·minimumChunkSize elements, or a single chunk, runs serially on the calling thread.
/// Chunk c covers `range.lowerBound + c·q + min(c, r)` onward, with q, r = count / chunks, count % chunks,
/// so chunk sizes differ by at most one. `body` must be safe to run concurrently on disjoint ranges.
/// Avoid calling multi-threaded BLAS inside `body` (see `setThreadCount`).
public func parallelFor(
    _ range: Range<Int>, chunks: Int? = nil, minimumChunkSize: Int = 1, _ body: (Range<Int>) -> Void
) {
    precondition(minimumChunkSize >= 1, "parallelFor: minimumChunkSize must be at least 1")
    let count = range.count
    if count == 0 { return }
    let requested = chunks ?? processorCount
    precondition(requested >= 1, "parallelFor: chunks must be at least 1, got \(requested)")
    let pieces = min(requested, count / minimumChunkSize)
    if pieces <= 1 {
        body(range)
        return
    }
    let (q, r) = count.quotientAndRemainder(dividingBy: pieces)
    DispatchQueue.concurrentPerform(iterations: pieces) { c in
        let start = range.lowerBound + c * q + min(c, r)
        let end = start + q + (c < r ? 1 : 0)
        body(start..<end)
    }
}

/// Elements below which `forEachPart` runs on the calling thread: decode's one-token rows and small tensors stay
/// serial (a part must be worth more than waking a worker).
public let elementwiseGrain = 1 << 16

/// `body` over `0..<rows` split into one part per core when `rows × width` elements give every part at least
/// `elementwiseGrain` elements, else whole on the calling thread: the elementwise ops (SiLU, products, sums, norms,
/// rotations) of a prefill or calibration call on every core. Each row is computed as it would be serially, so the
/// results do not depend on the split.
public func forEachPart(rows: Int, width: Int = 1, _ body: (Range<Int>) -> Void) {
    parallelFor(0..<rows, minimumChunkSize: max(1, elementwiseGrain / max(width, 1)), body)
}
