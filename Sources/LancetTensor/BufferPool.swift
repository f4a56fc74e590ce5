#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Recycles large tensor buffers by exact size, so a forward pass that allocates the same shapes call after
/// call does not map fresh memory for every op.
///
/// Without it each buffer above malloc's mmap threshold is a new mapping whose pages fault and are cleared
/// by the kernel on first touch: 4.2 million page faults and about 12% of the time of a calibration forward
/// of SmolLM2 (4 × 2048 tokens, measured with `perf stat`). Freed buffers of at least `minimumBytes` are
/// kept (up to `capacityBytes` in total) and handed to the next allocation of the same size; the rest go
/// back to the system as before. The pool never holds a buffer that is in use, so it adds at most
/// `capacityBytes` to a process's footprint.
public final class BufferPool: @unchecked Sendable {
    /// The pool every owning tensor allocates from.
    public static let shared = BufferPool()

    /// Buffers smaller than this are not pooled (malloc serves them from its heap anyway).
    public let minimumBytes = 1 << 20
    /// Buffers larger than a quarter of the capacity are not pooled either: they are rare (whole
    /// calibration sets) and would crowd out the per-op buffers that recur.
    var maximumBytes: Int { capacity / 4 }
    /// The most bytes kept for reuse; 0 turns pooling off. Defaults to 256 MiB, or `LANCET_BUFFER_POOL_MIB`.
    public var capacityBytes: Int {
        get { locked { capacity } }
        set { locked { capacity = max(0, newValue); trim(to: capacity) } }
    }
    /// Bytes currently held for reuse.
    public var heldBytes: Int { locked { held } }

    /// Whether `LANCET_BUFFER_POOL_MIB` set the capacity (then `withCapacity(atLeast:_:)` leaves it alone).
    public let capacityFromEnvironment: Bool

    private var capacity: Int
    private var held = 0
    private var cached: [Int: [UnsafeMutableRawPointer]] = [:]
    /// When each size was last released (a counter, for eviction order).
    private var lastRelease: [Int: UInt64] = [:]
    private var clock: UInt64 = 0
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        let mib = getenv("LANCET_BUFFER_POOL_MIB").flatMap { Int(String(cString: $0)) }
        capacityFromEnvironment = mib != nil
        capacity = max(0, mib ?? 256) << 20
    }

    /// Runs `body` with the capacity raised to at least `bytes` (unless `LANCET_BUFFER_POOL_MIB` set it), then
    /// restores it. For work that releases large sets of buffers and allocates the same sizes again: a block sweep
    /// that keeps one block's values over every window and then the next block's.
    public func withCapacity<R>(atLeast bytes: Int, _ body: () throws -> R) rethrows -> R {
        let saved = capacityBytes
        guard !capacityFromEnvironment, bytes > saved else { return try body() }
        capacityBytes = bytes
        defer { capacityBytes = saved }
        return try body()
    }

    /// A 64-byte aligned buffer of `bytes`, reused when one of exactly that size is held.
    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= minimumBytes, let reused = locked({ () -> UnsafeMutableRawPointer? in
            guard let p = cached[bytes]?.popLast() else { return nil }
            held -= bytes
            return p
        }) { return reused }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("Tensor: cannot allocate \(bytes) bytes") }
        return raw
    }

    /// Takes back a buffer from `allocate(bytes:)`: kept for reuse when it is large and there is room, else freed.
    /// Room is made by freeing buffers of other sizes, the size released longest ago first, so buffers of a
    /// size that stopped recurring (the weights of a model that was dropped) do not crowd out those that recur.
    func release(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let kept = bytes >= minimumBytes && locked { () -> Bool in
            guard bytes <= maximumBytes else { return false }
            clock += 1
            lastRelease[bytes] = clock
            if held + bytes > capacity { makeRoom(for: bytes) }
            guard held + bytes <= capacity else { return false }
            cached[bytes, default: []].append(pointer)
            held += bytes
            return true
        }
        if !kept { free(pointer) }
    }

    /// Frees held buffers of sizes other than `bytes`, least recently released size first, until a buffer of
    /// `bytes` fits (lock held).
    private func makeRoom(for bytes: Int) {
        for size in cached.keys.filter({ $0 != bytes }).sorted(by: { lastRelease[$0, default: 0] < lastRelease[$1, default: 0] }) {
            var list = cached[size]!
            while held + bytes > capacity, let p = list.popLast() {
                free(p)
                held -= size
            }
            cached[size] = list.isEmpty ? nil : list
            if held + bytes <= capacity { return }
        }
    }

    /// Frees every held buffer.
    public func drain() { locked { trim(to: 0) } }

    /// Frees held buffers, largest first, until at most `limit` bytes are held (lock held).
    private func trim(to limit: Int) {
        for (bytes, pointers) in cached.sorted(by: { $0.key > $1.key }) {
            var list = pointers
            while held > limit, let p = list.popLast() {
                free(p)
                held -= bytes
            }
            cached[bytes] = list.isEmpty ? nil : list
        }
    }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
