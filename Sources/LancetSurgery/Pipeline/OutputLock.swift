import Foundation
import LancetIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the lock on an output cannot be taken.
public enum OutputLockError: Error, CustomStringConvertible {
    /// Another run holds the output (`pid` nil when its lock file names no process yet).
    case busy(output: String, pid: Int32?)
    /// The lock file cannot be made or used.
    case unusable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .busy(output, pid?) where pid == getpid():
            "output \(output) is being written by process \(pid) (this process, another run of it)"
        case let .busy(output, pid?): "output \(output) is being written by process \(pid); wait for it to finish, or stop it"
        case let .busy(output, nil): "output \(output) is being written by another process"
        case let .unusable(path, reason): "\(path): \(reason)"
        }
    }
}

/// One writer per output: an exclusive lock on `<output>.lock`, held for a whole run (loading, surgery,
/// checkpoints, writing) and released on every exit path (`release`, or when the lock is freed; the kernel
/// drops it when the process dies).
///
/// The lock file holds the holder's PID and is `flock`ed for as long as it is held. A second run finds the
/// lock taken and fails at once with the holder's PID. A lock file left by a process that was killed is
/// stale — no process holds its `flock` any more (its PID is dead, or reused by an unrelated process) —
/// and is taken over. The file is created with `O_CREAT|O_EXCL|O_NOFOLLOW` and opened with `O_NOFOLLOW`,
/// so a link planted at its name is refused, never followed. Releasing removes the file while still
/// holding it; a taker checks that the file it locked is still the one at the path, so a release racing
/// with a take never leaves two holders.
public final class OutputLock: @unchecked Sendable {
    /// The output this lock guards.
    public let output: String
    /// The lock file, `<output>.lock`.
    public let path: String
    private var fd: Int32
    private let identity: (device: UInt64, inode: UInt64)
    private let madeFolders: [String]
    private let mutex = NSLock()

    private init(output: String, path: String, fd: Int32, identity: (UInt64, UInt64), madeFolders: [String]) {
        self.output = output
        self.path = path
        self.fd = fd
        self.identity = identity
        self.madeFolders = madeFolders
    }

    deinit { release() }

    /// The lock file of `output`: the output's path (without trailing slashes) with `.lock` appended.
    public static func lockPath(for output: String) -> String { OutputFolder.trimmingTrailingSlashes(output) + ".lock" }

    /// Takes the lock on `output`, making the output's folder if it is missing (removed again on release if
    /// still empty). Throws `OutputLockError.busy` when another run holds it; a stale lock is taken over, with
    /// a line to `log`.
    public static func acquire(output: String, log: (String) -> Void = { _ in }) throws -> OutputLock {
        let path = lockPath(for: output)
        let made = try OutputFolder.create(OutputFolder.parent(of: path))
        func fail(_ reason: String) -> OutputLockError {
            for folder in made.reversed() { rmdir(folder) }
            return .unusable(path: path, reason: reason)
        }
        for _ in 0..<16 {
            var created = true
            var fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 {
                guard errno == EEXIST else { throw fail("cannot create the lock file: \(IOErrorText.words(errno: errno))") }
                created = false
                fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 {
                    if errno == ENOENT { continue }  // released in between: try to create it again
                    if errno == ELOOP { throw fail("is a symbolic link; Lancet never writes through a link here: remove it") }
                    throw fail("cannot open the lock file: \(IOErrorText.words(errno: errno))")
                }
            }
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                throw fail("is not a regular file; remove it")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                let holder = readPID(fd)
                close(fd)
                if code == EWOULDBLOCK {
                    for folder in made.reversed() { rmdir(folder) }
                    throw OutputLockError.busy(output: output, pid: holder)
                }
                throw fail("cannot lock the lock file: \(IOErrorText.words(errno: code))")
            }
            // The previous holder may have removed the file between our open and our flock: then the lock we
            // hold is on a file nobody else will look at, and we start again.
            var now = stat()
            guard lstat(path, &now) == 0, now.st_dev == st.st_dev, now.st_ino == st.st_ino else {
                close(fd)
                continue
            }
            if !created {
                if let stale = readPID(fd) {
                    let state = kill(stale, 0) != 0 && errno == ESRCH ? "no longer running" : "no longer holding it"
                    log("taking over the stale lock \(path) of process \(stale) (\(state))")
                } else {
                    log("taking over the stale lock \(path), which names no process")
                }
            }
            let text = Array("\(getpid())\n".utf8)
            guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count else {
                let code = errno
                close(fd)
                throw fail("cannot write the lock file: \(IOErrorText.words(errno: code))")
            }
            return OutputLock(output: output, path: path, fd: fd, identity: (UInt64(st.st_dev), UInt64(st.st_ino)), madeFolders: made)
        }
        throw fail("kept being replaced while it was being locked")
    }

    /// Whether this lock is still held (not released).
    public var isHeld: Bool { mutex.withLock { fd >= 0 } }

    /// Releases the lock and removes its file (and the output folders `acquire` made, if still empty).
    /// Calling it again does nothing.
    public func release() {
        mutex.withLock {
            guard fd >= 0 else { return }
            // Remove the file while holding it, and only if it is still ours.
            var st = stat()
            if lstat(path, &st) == 0, UInt64(st.st_dev) == identity.device, UInt64(st.st_ino) == identity.inode { unlink(path) }
            close(fd)
            fd = -1
            for folder in madeFolders.reversed() { rmdir(folder) }
        }
    }

    /// The PID written in an open lock file, if any.
    static func readPID(_ fd: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &bytes, bytes.count, 0)
        guard n > 0 else { return nil }
        return Int32(String(decoding: bytes[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
