import Foundation
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
    /// Creates an error about `path` for a failed system call: "cannot create /x/y.tmp: permission denied".
    public init(path: String, failed what: String, errno code: Int32) {
        self.init(path: path, reason: "\(what): \(IOErrorText.words(errno: code))")
    }
    public var description: String { "\(path): \(reason)" }
}

/// File-system errors in words: errno values as lower-case text, Foundation's file errors as a sentence
/// naming the file, instead of an `NSCocoaErrorDomain Code=…` dump.
public enum IOErrorText {
    /// The words for an errno value: "permission denied", "no such file or directory".
    public static func words(errno code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// A sentence for a Foundation file error ("cannot write /x/y: read-only file system"), or nil when
    /// `error` is not one (Lancet's own errors already carry their words).
    public static func describe(_ error: Error) -> String? {
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return nil }
        let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path ?? "a file"
        let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        let posix: Int32? = ns.domain == NSPOSIXErrorDomain ? Int32(ns.code)
            : underlying.flatMap { $0.domain == NSPOSIXErrorDomain ? Int32($0.code) : nil }
        let verb = ns.domain == NSCocoaErrorDomain && (256..<512).contains(ns.code) ? "cannot read" : "cannot write"
        return "\(verb) \(path): " + (posix.map { words(errno: $0) } ?? cocoaWords(ns.code))
    }

    /// The words for the codes of Foundation's file errors (`NSFileNoSuchFileError` and the rest).
    static func cocoaWords(_ code: Int) -> String {
        switch code {
        case 4, 260: "no such file or directory"
        case 257, 513: "permission denied"
        case 516: "the file already exists"
        case 640: "no space left on device"
        case 642: "read-only file system"
        case 259, 261, 264: "the file's contents are not in the expected format"
        default: "file-system error \(code)"
        }
    }
}

/// Writes a file atomically: the bytes go to a temporary file in the same folder, which is renamed over
/// the destination only after everything was written and flushed. A failed or interrupted write leaves
/// the destination as it was and removes the temporary file.
public enum AtomicFile {
    /// Writes `path` through `body`. With `overwrite: false` an existing file is an error.
    public static func write(to path: String, overwrite: Bool = true, _ body: (FileSink) throws -> Void) throws {
        try checkWritable(path, overwrite: overwrite)
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL|O_NOFOLLOW: a file or link planted at the temporary name is never opened, let alone followed.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, failed: "cannot create \(temporary)", errno: errno) }
        let sink = FileSink(fd: fd, path: path)
        var isOpen = true
        do {
            try body(sink)
            try sink.flush()
            guard fsync(fd) == 0 else { throw FileWriteError(path: path, failed: "cannot flush \(temporary) to disk", errno: errno) }
            close(fd)
            isOpen = false
            guard rename(temporary, path) == 0 else {
                throw FileWriteError(path: path, failed: "cannot rename the temporary file \(temporary) into place", errno: errno)
            }
        } catch {
            if isOpen { close(fd) }
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
                throw FileWriteError(path: path, failed: "cannot write", errno: errno)
            }
            done += n
        }
    }
}
