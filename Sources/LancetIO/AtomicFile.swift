#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error writing an output file. The message names the file.
public struct FileWriteError: Error, CustomStringConvertible {
    /// The file that was being written.
    public let path: String
    /// What went wrong.
    public let reason: String
    /// Creates an error about `path`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// Writes a file atomically: the bytes go to a temporary file in the same folder, which is renamed over
/// the destination only after everything was written and flushed. A failed or interrupted write leaves
/// the destination as it was and removes the temporary file.
public enum AtomicFile {
    /// Writes `path` through `body`. With `overwrite: false` an existing file is an error.
    public static func write(to path: String, overwrite: Bool = true, _ body: (FileSink) throws -> Void) throws {
        try checkWritable(path, overwrite: overwrite)
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let sink = FileSink(fd: fd, path: path)
        do {
            try body(sink)
            try sink.flush()
            guard fsync(fd) == 0 else { throw FileWriteError(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
            close(fd)
            guard rename(temporary, path) == 0 else {
                throw FileWriteError(path: path, reason: "cannot rename the temporary file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }
}

extension AtomicFile {
    /// Throws the error `write(to:overwrite:)` gives for an existing file when `overwrite` is false, so that
    /// a writer can refuse before doing any work.
    public static func checkWritable(_ path: String, overwrite: Bool) throws {
        if !overwrite && access(path, F_OK) == 0 {
            throw FileWriteError(path: path, reason: "already exists (use --force to overwrite)")
        }
    }
}

/// A buffered sequential writer handed out by `AtomicFile.write`.
public final class FileSink {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private static let bufferLimit = 1 << 20
    /// Bytes written so far (including buffered bytes).
    public private(set) var offset = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(Self.bufferLimit)
    }

    /// Appends raw bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        offset += bytes.count
        if buffer.count + bytes.count <= Self.bufferLimit {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= Self.bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends a byte array.
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Appends a fixed-width integer in little-endian order.
    public func write<T: FixedWidthInteger>(littleEndian value: T) throws {
        try withUnsafeBytes(of: value.littleEndian) { try write($0) }
    }

    /// Appends zero bytes until `offset` is a multiple of `alignment`.
    public func pad(toMultipleOf alignment: Int) throws {
        let n = (alignment - offset % alignment) % alignment
        if n > 0 { try write([UInt8](repeating: 0, count: n)) }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}
