import CKernels
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Persistent threads for short parallel jobs: decode's matrix–vector products, a few hundred per token,
/// each a fraction of a millisecond.
///
/// `DispatchQueue.concurrentPerform` wakes its workers through the kernel on every call (tens of microseconds
/// on a 2-core machine, several milliseconds per decoded token). Here `processorCount − 1` threads wait for
/// the next job by spinning (20,000 `pause` instructions, roughly 0.5–1 ms), then sleep on a condition variable; the caller
/// runs part 0 itself and spins until the others are done. While one job runs, a second caller (another
/// thread, or a job calling `run` from inside) runs its parts serially on its own thread instead of waiting.
public final class WorkerPool: @unchecked Sendable {
    /// The pool the kernels share, with one thread per extra core.
    public static let shared = WorkerPool(threads: processorCount - 1)

    /// Worker threads (besides the caller).
    public let threads: Int

    private let generation = Atomic<Int>(0)
    private let arrivals = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private var job: ((Int) -> Void)?
    private var parts = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// Spin iterations before a waiting worker sleeps (each iteration is one atomic load and a pause).
    static let spinLimit = 20_000

    /// A pool of `threads` workers (0: every job runs on the caller).
    public init(threads: Int) {
        self.threads = max(0, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for w in 0..<self.threads {
            let thread = Thread { [unowned self] in self.workerLoop(part: w + 1) }
            thread.start()
        }
    }

    /// Runs `body(part)` for `part` in `0..<parts`, concurrently on up to `threads + 1` threads, and returns
    /// when all are done. Parts beyond the pool's threads run on the caller after its own.
    public func run(parts: Int, _ body: (Int) -> Void) {
        if parts <= 0 { return }
        guard parts > 1, threads > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for p in 0..<parts { body(p) }
            return
        }
        dispatch(parts: parts, body)
        busy.store(false, ordering: .releasing)
    }

    /// Runs `body(phase, part)` for every phase in order and every part in `0..<parts`: the parts of a phase run
    /// concurrently and no part starts a phase before every part has finished the one before (a barrier). One
    /// hand-off serves every phase, where a `run` per phase would hand off again. When the parts cannot all run at
    /// once (more parts than threads, or the pool busy with another job), the phases run one after the other on the
    /// caller.
    public func run(parts: Int, phases: Int, _ body: (_ phase: Int, _ part: Int) -> Void) {
        if parts <= 0 || phases <= 0 { return }
        guard parts > 1, parts <= threads + 1,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for phase in 0..<phases { for p in 0..<parts { body(phase, p) } }
            return
        }
        arrivals.store(0, ordering: .sequentiallyConsistent)
        dispatch(parts: parts) { part in
            for phase in 0..<phases {
                if phase > 0 {
                    arrivals.add(1, ordering: .acquiringAndReleasing)
                    while arrivals.load(ordering: .acquiring) < phase * parts { spinPause() }
                }
                body(phase, part)
            }
        }
        busy.store(false, ordering: .releasing)
    }

    /// Hands `body` to the workers (the pool already marked busy by the caller), runs part 0 and any parts beyond
    /// the pool's threads on the caller, and returns when all are done.
    private func dispatch(parts: Int, _ body: (Int) -> Void) {
        let pooled = min(parts, threads + 1)
        withoutActuallyEscaping(body) { body in
            job = body
            self.parts = pooled
            // Every worker acknowledges every job (those without a part too), so none can lag a job behind.
            remaining.store(threads, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            body(0)
            for p in pooled..<parts { body(p) }
            while remaining.load(ordering: .acquiring) > 0 { spinPause() }
            job = nil
        }
    }

    private func workerLoop(part: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins < Self.spinLimit {
                    spinPause()
                } else {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, mutex) }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if part < parts, let job { job(part) }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}

/// A hint to the core that the thread is spinning (x86 `pause`), so a spinning loop yields the pipeline.
@inline(__always) func spinPause() { lancet_spin_pause() }
