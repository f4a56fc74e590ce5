import Foundation
import XCTest
@testable import LancetTensor

/// Decode's kernels: the matrix–vector product against a Double reference, the worker pool's guarantees, and
/// the read-bandwidth measurement.
final class MatrixVectorTests: XCTestCase {
    /// Every shape class: one row, rows below a panel, ragged rows and columns, enough rows for every worker.
    func testMatrixVectorMatchesTheDoubleProductForRaggedShapes() {
        for (rows, columns, seed) in [(1, 1, 1), (3, 17, 2), (15, 64, 3), (129, 576, 4), (1000, 63, 5), (2049, 200, 6)] as [(Int, Int, UInt64)] {
            let w = randomMatrix(rows, columns, seed: seed)
            let x = randomMatrix(1, columns, seed: seed + 100)
            var y = [Float](repeating: .nan, count: rows)
            w.withUnsafeBufferPointer { wp in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                matrixVector(weight: wp.baseAddress!, rows: rows, columns: columns, x: xp.baseAddress!, y: yp.baseAddress!)
            }}}
            let want = naiveMatmul(x, w, transposeB: true).scalars
            for r in 0..<rows {
                var scale = 0.0
                for c in 0..<columns { scale += abs(Double(w[r, c]) * Double(x[0, c])) }
                XCTAssertEqual(Double(y[r]), Double(want[r]), accuracy: 1e-6 * max(scale, 1), "rows \(rows) columns \(columns) row \(r)")
            }
        }
    }

    /// A row's tail is read with a load that runs into the next row and is masked: infinities and NaN at the start of
    /// the next row stay out of the row's sum (in Float and in both 16-bit formats), and the rows holding them still
    /// get them.
    func testARowsTailIgnoresWhatTheNextRowHolds() {
        let (rows, columns) = (6, 37)
        var w = randomMatrix(rows, columns, seed: 11)
        let x = randomMatrix(1, columns, seed: 12)
        let clean = naiveMatmul(x, w, transposeB: true)
        for r in [1, 3] { for c in 0..<16 { w[r, c] = c % 2 == 0 ? .infinity : .nan } }
        var y = [Float](repeating: 0, count: rows)
        w.withUnsafeBufferPointer { wp in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            matrixVector(weight: wp.baseAddress!, rows: rows, columns: columns, x: xp.baseAddress!, y: yp.baseAddress!)
        }}}
        for format in HalfFormat.allCases {
            let h = HalfMatrix(w, format: format)
            let half = h.multiply(x), want = naiveMatmul(x, h.widened(), transposeB: true)
            for r in [0, 2] {
                XCTAssertEqual(half[0, r], want[0, r], accuracy: 1e-5, "\(format) row \(r)")
                XCTAssertTrue(half[0, r + 1].isNaN, "\(format) row \(r + 1) holds NaN")
            }
        }
        for r in [0, 2, 4, 5] { XCTAssertEqual(y[r], clean[0, r], accuracy: 1e-5, "row \(r)") }
        XCTAssertTrue(y[1].isNaN && y[3].isNaN)
    }

    /// One thread or all: the same rows give the same sums (each row's sum does not depend on the split).
    func testTheSplitOverThreadsDoesNotChangeAnyRow() {
        // Many rows, and few long rows (a low-rank inner factor: split by its weight count, not its rows).
        for (rows, columns) in [(777, 300), (86, 576), (40, 1536)] {
            let w = randomMatrix(rows, columns, seed: 7), x = randomMatrix(1, columns, seed: 8)
            func run(threads: Int) -> [Float] {
                var y = [Float](repeating: 0, count: rows)
                w.withUnsafeBufferPointer { wp in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    matrixVector(weight: wp.baseAddress!, rows: rows, columns: columns, x: xp.baseAddress!, y: yp.baseAddress!, threads: threads)
                }}}
                return y
            }
            XCTAssertEqual(run(threads: 1), run(threads: processorCount), "\(rows) × \(columns)")
        }
    }

    func testThePoolRunsEveryPartExactlyOnce() {
        let pool = WorkerPool(threads: 3)
        for parts in [1, 2, 4, 9] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: parts)
            counts.initialize(repeating: 0, count: parts)
            defer { counts.deallocate() }
            for _ in 0..<200 { pool.run(parts: parts) { counts[$0] += 1 } }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: parts)), Array(repeating: 200, count: parts), "\(parts) parts")
        }
    }

    /// A job that runs the pool again, and callers on several threads at once, finish (serially where the pool is taken).
    func testNestedAndConcurrentCallersFinish() {
        let pool = WorkerPool(threads: 1)
        let total = Counter()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 {
                pool.run(parts: 2) { _ in pool.run(parts: 3) { _ in total.add() } }
            }
        }
        XCTAssertEqual(total.value, 4 * 50 * 2 * 3)
    }

    /// The phased run: every part of every phase runs once, and no part starts a phase before all parts finished
    /// the one before; nested and concurrent phased runs (which fall back to the caller) finish too.
    func testPhasedRunsMeetAtTheBarrier() {
        let pool = WorkerPool(threads: 1)
        let done = Counter(), misordered = Counter()
        for _ in 0..<300 {
            let finished = UnsafeMutablePointer<Int>.allocate(capacity: 3)
            finished.initialize(repeating: 0, count: 3)
            let lock = NSLock()
            pool.run(parts: 2, phases: 3) { phase, _ in
                lock.lock()
                if phase > 0 && finished[phase - 1] != 2 { misordered.add() }
                lock.unlock()
                done.add()
                lock.lock(); finished[phase] += 1; lock.unlock()
            }
            finished.deallocate()
        }
        XCTAssertEqual(done.value, 300 * 2 * 3)
        XCTAssertEqual(misordered.value, 0)
        let nested = Counter()
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            for _ in 0..<30 { pool.run(parts: 2, phases: 2) { _, _ in pool.run(parts: 2, phases: 2) { _, _ in nested.add() } } }
        }
        XCTAssertEqual(nested.value, 3 * 30 * 4 * 4)
        // More parts than threads: the phases run in turn on the caller.
        let serial = Counter()
        pool.run(parts: 5, phases: 2) { _, _ in serial.add() }
        XCTAssertEqual(serial.value, 10)
    }

    /// A low-rank product in one hand-off gives the two matrix–vector products' values bit for bit, ranks below a
    /// panel included.
    func testLowRankProductEqualsTwoMatrixVectorProducts() {
        for (rows, rank, columns) in [(576, 86, 576), (1536, 250, 576), (576, 7, 1536), (192, 40, 576), (30, 3, 20)] {
            let a = randomMatrix(rank, columns, seed: 11), b = randomMatrix(rows, rank, seed: 12), x = randomMatrix(1, columns, seed: 13)
            var z = [Float](repeating: 0, count: rank), y = [Float](repeating: 0, count: rows)
            var zRef = z, yRef = y
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in x.withUnsafeBufferPointer { xp in
                z.withUnsafeMutableBufferPointer { zp in y.withUnsafeMutableBufferPointer { yp in
                    lowRankMatrixVector(a: ap.baseAddress!, rank: rank, columns: columns, b: bp.baseAddress!, rows: rows,
                                        x: xp.baseAddress!, z: zp.baseAddress!, y: yp.baseAddress!)
                }}
                zRef.withUnsafeMutableBufferPointer { zp in
                    matrixVector(weight: ap.baseAddress!, rows: rank, columns: columns, x: xp.baseAddress!, y: zp.baseAddress!)
                    yRef.withUnsafeMutableBufferPointer { yp in
                        matrixVector(weight: bp.baseAddress!, rows: rows, columns: rank, x: zp.baseAddress!, y: yp.baseAddress!)
                    }
                }
            }}}
            XCTAssertEqual(z, zRef, "\(rows) × \(rank) × \(columns)")
            XCTAssertEqual(y, yRef, "\(rows) × \(rank) × \(columns)")
        }
    }

    /// The fused SwiGLU feed-forward gives the values of its three products and the gate computed one by one, bit for
    /// bit, for the model's widths and for ragged ones (a split over the cores that leaves a part without rows).
    func testSwiGLUProductEqualsItsProductsOneByOne() {
        for (rows, width, columns) in [(576, 1536, 576), (576, 384, 576), (576, 17, 576), (30, 40, 20), (5, 3, 7)] {
            let gate = randomMatrix(width, columns, seed: 21), up = randomMatrix(width, columns, seed: 22)
            let down = randomMatrix(rows, width, seed: 23), x = randomMatrix(1, columns, seed: 24)
            var y = [Float](repeating: 0, count: rows), yRef = y
            var g = [Float](repeating: 0, count: width), u = g, a = g
            gate.withUnsafeBufferPointer { gp in up.withUnsafeBufferPointer { upp in down.withUnsafeBufferPointer { dp in
                x.withUnsafeBufferPointer { xp in
                    swiGLUMatrixVector(gate: gp.baseAddress!, up: upp.baseAddress!, width: width, columns: columns,
                                       down: dp.baseAddress!, rows: rows, x: xp.baseAddress!, y: &y)
                    matrixVector(weight: gp.baseAddress!, rows: width, columns: columns, x: xp.baseAddress!, y: &g)
                    matrixVector(weight: upp.baseAddress!, rows: width, columns: columns, x: xp.baseAddress!, y: &u)
                    swiglu(gate: g, up: u, count: width, out: &a)
                    matrixVector(weight: dp.baseAddress!, rows: rows, columns: width, x: a, y: &yRef)
                }
            }}}
            XCTAssertEqual(y, yRef, "\(rows) × \(width) × \(columns)")
            XCTAssertTrue(y.contains { $0 != 0 }, "\(rows) × \(width) × \(columns)")
        }
    }

    /// A pool whose workers fell asleep (no job for longer than the spin) still wakes for the next job.
    func testSleepingWorkersWakeForTheNextJob() {
        let pool = WorkerPool(threads: 1)
        let total = Counter()
        pool.run(parts: 2) { _ in total.add() }
        Thread.sleep(forTimeInterval: 0.2)
        pool.run(parts: 2) { _ in total.add() }
        XCTAssertEqual(total.value, 4)
    }

    func testReadBandwidthIsMeasuredOverTheWholeBuffer() {
        let m = MemoryBandwidth.measure(bytes: 8 << 20, repetitions: 2)
        XCTAssertEqual(m.bytes, 8 << 20)
        XCTAssertGreaterThan(m.gigabytesPerSecond, 0)
        XCTAssertEqual(MemoryBandwidth.sumOfElements([Float](repeating: 0.5, count: 80), count: 80), 40)
    }
}

/// A thread-safe counter for the pool tests.
private final class Counter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLock()
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
