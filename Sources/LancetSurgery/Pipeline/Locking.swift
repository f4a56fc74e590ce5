import Foundation

/// A small lock wrapper.
final class NSLockShim: @unchecked Sendable {
    private let lock = NSLock()
    func sync<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
