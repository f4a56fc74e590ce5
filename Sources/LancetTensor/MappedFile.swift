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

/// A whole file's bytes, read-only: memory-mapped from disk, or held in memory (a copy, or a view of
/// memory owned by another object) so that parsers can read in-memory data through the same type.
/// Tensors viewing it keep it alive.
public final class MappedFile: @unchecked Sendable {
    /// The file's path as given (for in-memory data, the name used in messages).
    public let path: String
    /// The file's size in bytes.
    public let size: Int
    private let base: UnsafeRawPointer?
    private let storage: Storage

    /// Who owns the bytes, and so how they are released.
    private enum Storage {
        case mapped
        case allocated
        case viewed(owner: AnyObject?)
    }

    /// Maps `path` read-only. Throws `FileMappingError` when it cannot be opened, is a directory, or cannot be mapped.
    public init(path: String) throws {
        self.path = path
        self.storage = .mapped
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
        base = UnsafeRawPointer(p)
    }

    /// An in-memory file holding a copy of `bytes`, named `path` in messages.
    public init(copying bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        self.size = bytes.count
        self.storage = .allocated
        self.base = Self.alignedCopy(of: bytes)
    }

    /// An in-memory file holding a copy of `bytes`, named `path` in messages.
    public init(copying bytes: [UInt8], path: String) {
        self.path = path
        self.size = bytes.count
        self.storage = .allocated
        self.base = bytes.withUnsafeBytes { Self.alignedCopy(of: $0) }
    }

    /// A view of memory that `owner` keeps alive, named `path` in messages; no copy is made.
    /// The memory must stay valid and unchanged while this object or any tensor viewing it is in use.
    public init(viewing bytes: UnsafeRawBufferPointer, owner: AnyObject?, path: String) {
        self.path = path
        self.size = bytes.count
        self.base = bytes.isEmpty ? nil : bytes.baseAddress
        self.storage = .viewed(owner: owner)
    }

    /// The file's bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// A 64-byte aligned heap copy (as a mapping is page-aligned, so F32 tensor data can be viewed in place).
    private static func alignedCopy(of bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return nil }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes.count) == 0, let raw else {
            fatalError("MappedFile: cannot allocate \(bytes.count) bytes")
        }
        raw.copyMemory(from: source, byteCount: bytes.count)
        return UnsafeRawPointer(raw)
    }

    deinit {
        guard let base else { return }
        switch storage {
        case .mapped: munmap(UnsafeMutableRawPointer(mutating: base), size)
        case .allocated: free(UnsafeMutableRawPointer(mutating: base))
        case .viewed: break
        }
    }
}
