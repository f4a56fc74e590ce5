import XCTest
@testable import LancetTensor

/// The buffer pool hands a released buffer back only to an allocation of exactly its size, and never holds
/// more than its capacity.
final class BufferPoolTests: XCTestCase {
    let mib = 1 << 20

    func testAReleasedBufferIsReusedForTheSameSizeOnly() {
        let pool = BufferPool()
        pool.capacityBytes = 64 * mib
        let a = pool.allocate(bytes: 4 * mib)
        pool.release(a, bytes: 4 * mib)
        XCTAssertEqual(pool.heldBytes, 4 * mib)
        let other = pool.allocate(bytes: 5 * mib)
        XCTAssertNotEqual(other, a)
        XCTAssertEqual(pool.heldBytes, 4 * mib)
        let same = pool.allocate(bytes: 4 * mib)
        XCTAssertEqual(same, a)
        XCTAssertEqual(pool.heldBytes, 0)
        XCTAssertEqual(Int(bitPattern: same) % 64, 0)
        pool.release(same, bytes: 4 * mib)
        pool.release(other, bytes: 5 * mib)
        pool.drain()
        XCTAssertEqual(pool.heldBytes, 0)
    }

    func testARaisedCapacityHoldsWhatTheDefaultWouldFreeAndIsRestoredAfterwards() {
        let pool = BufferPool()
        guard !pool.capacityFromEnvironment else { return }                 // the environment's capacity is left alone
        pool.capacityBytes = 16 * mib
        let held = pool.withCapacity(atLeast: 64 * mib) { () -> Int in
            XCTAssertEqual(pool.capacityBytes, 64 * mib)
            // A block's worth of kept buffers, released together, all held for the next block's allocations.
            let buffers = (0..<12).map { _ in pool.allocate(bytes: 5 * mib) }
            for b in buffers { pool.release(b, bytes: 5 * mib) }
            let again = (0..<12).map { _ in pool.allocate(bytes: 5 * mib) }
            XCTAssertEqual(Set(again), Set(buffers))
            for b in again { pool.release(b, bytes: 5 * mib) }
            return pool.heldBytes
        }
        XCTAssertEqual(held, 60 * mib)
        XCTAssertEqual(pool.capacityBytes, 16 * mib)
        XCTAssertLessThanOrEqual(pool.heldBytes, 16 * mib, "restoring the capacity frees what exceeds it")
        pool.withCapacity(atLeast: 8 * mib) { XCTAssertEqual(pool.capacityBytes, 16 * mib, "never lowered") }
    }

    func testSmallHugeAndOverflowingBuffersAreFreedNotHeld() {
        let pool = BufferPool()
        pool.capacityBytes = 16 * mib                                   // buffers above 4 MiB are not pooled
        pool.release(pool.allocate(bytes: mib / 2), bytes: mib / 2)     // below the minimum
        pool.release(pool.allocate(bytes: 5 * mib), bytes: 5 * mib)     // above a quarter of the capacity
        XCTAssertEqual(pool.heldBytes, 0)
        let buffers = (0..<5).map { _ in pool.allocate(bytes: 4 * mib) }
        for b in buffers { pool.release(b, bytes: 4 * mib) }
        XCTAssertEqual(pool.heldBytes, 16 * mib)                        // the fifth did not fit
        pool.capacityBytes = 8 * mib
        XCTAssertEqual(pool.heldBytes, 8 * mib)                         // lowering the capacity frees the excess
        pool.drain()
        XCTAssertEqual(pool.heldBytes, 0)
    }

    func testBuffersOfASizeReleasedLongAgoMakeRoomForARecurringSize() {
        let pool = BufferPool()
        pool.capacityBytes = 16 * mib
        let old = (0..<2).map { _ in pool.allocate(bytes: 4 * mib) }     // e.g. the weights of a dropped model
        for b in old { pool.release(b, bytes: 4 * mib) }
        let older = pool.allocate(bytes: 3 * mib)
        pool.release(older, bytes: 3 * mib)
        XCTAssertEqual(pool.heldBytes, 11 * mib)
        let recurring = (0..<3).map { _ in pool.allocate(bytes: 2 * mib) }
        for b in recurring { pool.release(b, bytes: 2 * mib) }          // 17 MiB would not fit: one 4 MiB buffer goes
        XCTAssertEqual(pool.heldBytes, 13 * mib)
        XCTAssertEqual(pool.allocate(bytes: 3 * mib), older)            // the 3 MiB one was released after the 4 MiB ones
        let big = pool.allocate(bytes: 4 * mib)
        XCTAssertTrue(old.contains(big))
        XCTAssertEqual(pool.heldBytes, 6 * mib)
        pool.release(big, bytes: 4 * mib)
        pool.release(older, bytes: 3 * mib)
        pool.drain()
        XCTAssertEqual(pool.heldBytes, 0)
    }

    func testTensorsRoundTripThroughTheSharedPool() {
        let shape = [512, 1024]                                         // 2 MiB: pooled
        for fill in [Float(1), 2, 3] {
            let t = Tensor(shape: shape, repeating: fill)
            XCTAssertTrue(t.scalars.allSatisfy { $0 == fill })
        }
    }
}
