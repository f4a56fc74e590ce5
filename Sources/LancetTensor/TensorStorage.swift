#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Reference-counted memory behind a `Tensor`: owned aligned memory, a borrowed view kept alive by `owner`, or
/// 16-bit values (a `HalfSource`, e.g. an F16 tensor of a mapped GGUF file) widened to Float the first time
/// anything reads them as Float.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    /// Where the Floats are (for 16-bit values, an anonymous mapping that holds no memory until widened into).
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// What keeps borrowed memory alive (nil: `base` is owned and goes back to the `BufferPool`).
    @usableFromInline let owner: AnyObject?
    /// The 16-bit values, for a storage that holds them (nil: `base` holds the Floats from the start).
    @usableFromInline let half: DeferredWidening?

    /// The Floats, widened from the 16-bit values first if that has not happened yet.
    @inlinable var pointer: UnsafeMutablePointer<Float> {
        if let half { half.widenOnce(into: base, count: count) }
        return base
    }

    init(allocating count: Int) {
        self.base = BufferPool.shared.allocate(bytes: Self.bytes(count)).bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        self.owner = nil
        self.half = nil
    }

    /// The bytes an owning storage of `count` floats allocates (at least one float).
    static func bytes(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    init(viewing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.base = pointer
        self.count = count
        self.owner = owner
        self.half = nil
    }

    /// A storage holding `count` 16-bit values of `source`; the Float memory is reserved, not touched, until read.
    /// Nil when the reservation fails (the process's mappings exhausted, e.g. by a file of very many tensors).
    init?(widening source: HalfSource, count: Int) {
        // Reserved without swap accounting (MAP_NORESERVE): untouched, it costs nothing; under strict overcommit
        // (vm.overcommit_memory = 2) the reservation is still charged.
        let raw = mmap(nil, Self.bytes(count), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let raw, raw != MAP_FAILED else { return nil }
        let deferred = DeferredWidening(source)
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        self.owner = deferred
        self.half = deferred
    }

    /// Owned memory holding the `count` values of `source` widened to Float.
    convenience init(widened source: HalfSource, count: Int) {
        self.init(allocating: count)
        widen(source.bits, format: source.format, count: count, out: base)
    }

    /// The 16-bit values while they have not been widened (nil after, and for every other storage).
    var unwidened: HalfSource? {
        guard let half, !half.isWidened else { return nil }
        return half.source
    }

    /// An owned copy of the elements (widened straight from the 16-bit values when they have not been read yet).
    @usableFromInline func copy() -> TensorStorage {
        if let unwidened { return TensorStorage(widened: unwidened, count: count) }
        let s = TensorStorage(allocating: count)
        s.base.initialize(from: pointer, count: count)
        return s
    }

    deinit {
        if half != nil {
            munmap(base, Self.bytes(count))
        } else if owner == nil {
            BufferPool.shared.release(base, bytes: Self.bytes(count))
        }
    }
}

/// 16-bit floating-point values that a tensor holds as they are stored (an F16 or BF16 tensor of a mapped file),
/// kept alive by `owner`.
public struct HalfSource: @unchecked Sendable {
    /// The values, row-major, 2-byte aligned, in the machine's byte order.
    public let bits: UnsafePointer<UInt16>
    /// Their format.
    public let format: HalfFormat
    /// What keeps `bits` valid (e.g. the `MappedFile`).
    public let owner: AnyObject

    /// `bits` in `format`, valid while `owner` lives.
    public init(bits: UnsafePointer<UInt16>, format: HalfFormat, owner: AnyObject) {
        self.bits = bits
        self.format = format
        self.owner = owner
    }

    /// The Float value of element `i`.
    public subscript(i: Int) -> Float { format.value(bits[i]) }
}

/// The once-only widening of a 16-bit storage into its Float memory, safe when several threads read the tensor
/// at once.
@usableFromInline
final class DeferredWidening: @unchecked Sendable {
    let source: HalfSource
    @usableFromInline let widened = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    init(_ source: HalfSource) { self.source = source }

    /// Whether the Float memory has been written.
    @inlinable var isWidened: Bool { widened.load(ordering: .acquiring) }

    /// Writes the Float values into `out` unless done already (one thread does it; the others wait for it). The
    /// check is inlined into element access; only the first read takes the call.
    @inlinable func widenOnce(into out: UnsafeMutablePointer<Float>, count: Int) {
        if !isWidened { widenFirst(into: out, count: count) }
    }

    @usableFromInline func widenFirst(into out: UnsafeMutablePointer<Float>, count: Int) {
        lock.withLock { _ in
            guard !widened.load(ordering: .acquiring) else { return }
            widen(source.bits, format: source.format, count: count, out: out)
            widened.store(true, ordering: .releasing)
        }
    }
}

extension Tensor {
    /// A tensor of `shape` holding the 16-bit values of `source` (`count(shape)` of them): the Float elements are
    /// widened from them, exactly, the first time anything reads the tensor as Float; until then it takes no Float
    /// memory, and a runtime that multiplies by 16-bit weights (`HalfMatrix`) uses `source` itself.
    /// Where the Float memory cannot be reserved (the process's mappings exhausted), the values are widened at once.
    public init(shape: [Int], widening source: HalfSource) {
        let count = Tensor.elementCount(shape)
        self.init(shape: shape, storage: TensorStorage(widening: source, count: count) ?? TensorStorage(widened: source, count: count))
    }

    /// A tensor of `shape` holding the little-endian 16-bit values stored at `bytes` (a file's F16 or BF16 tensor,
    /// kept valid by `owner`) in place, or nil where they cannot be used in place (not 2-byte aligned, a big-endian
    /// machine, or not `count(shape)` values): then the caller widens them itself.
    public init?(shape: [Int], storedHalf bytes: UnsafeRawBufferPointer, format: HalfFormat, owner: AnyObject) {
        #if _endian(little)
        guard let base = bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<UInt16>.alignment == 0,
              bytes.count == 2 * Tensor.elementCount(shape) else { return nil }
        self.init(shape: shape, widening: HalfSource(bits: base.assumingMemoryBound(to: UInt16.self), format: format, owner: owner))
        #else
        return nil
        #endif
    }

    /// The 16-bit values this tensor holds, if it was made from them and not changed since (widening to Float
    /// keeps them: the Floats are the same values).
    public var halfSource: HalfSource? { storage.half?.source }

    /// False while a tensor of 16-bit values has not been read as Float (and so takes no Float memory); true
    /// for every other tensor.
    public var holdsFloats: Bool { storage.half?.isWidened ?? true }

    /// The 16-bit values while the tensor has not been read as Float (nil after, and for every other tensor): what
    /// a reader uses to read values without widening the whole tensor.
    public var unwidenedHalfSource: HalfSource? { storage.unwidened }

    /// The address of the tensor's Float storage, without reading (or widening) it: the same for tensors that
    /// share storage. A key, not a pointer to read through.
    public var storageAddress: UnsafeRawPointer { UnsafeRawPointer(storage.base) }

    /// Writes row `r` of a matrix to `out` (`columns` floats), from the 16-bit values when the tensor has not been
    /// widened (so reading a few rows of a large 16-bit table, an embedding, does not widen all of it).
    public func copyRow(_ r: Int, to out: UnsafeMutablePointer<Float>) {
        precondition(rank == 2 && r >= 0 && r < shape[0], "Tensor.copyRow: row \(r) of shape \(shape)")
        let c = shape[1]
        if let source = unwidenedHalfSource {
            widen(source.bits + r * c, format: source.format, count: c, out: out)
        } else {
            out.update(from: storage.pointer + r * c, count: c)
        }
    }
}
