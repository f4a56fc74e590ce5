#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors opening or mapping a file.
public enum FileMappingError: Error, CustomStringConvertible {
    /// The file could not be opened or mapped; `reason` is the system's message.
    case cannotMap(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotMap(path, reason): return "\(path): cannot read file: \(reason)"
        }
    }
}

/// A whole file mapped read-only into memory. Tensors viewing it keep it alive.
public final class MappedFile: @unchecked Sendable {
    /// The file's path as given.
    public let path: String
    /// The file's size in bytes.
    public let size: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps `path` read-only. Throws `FileMappingError` when it cannot be opened, is a directory, or cannot be mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileMappingError.cannotMap(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileMappingError.cannotMap(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileMappingError.cannotMap(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FileMappingError.cannotMap(path: path, reason: String(cString: strerror(errno))) }
        base = p
    }

    /// The file's bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    deinit { if let base { munmap(base, size) } }
}
