#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A dense Float32 tensor: row-major, contiguous, with value semantics.
///
/// A tensor either owns its memory (64-byte aligned), is a read-only view of memory owned by
/// another object (a memory-mapped file), or holds 16-bit values it widens to Float when first read
/// (`init(shape:widening:)`). Mutating a view, or a tensor whose storage is shared, copies it first,
/// so `var b = a; b[0, 0] = 1` never changes `a`.
public struct Tensor: @unchecked Sendable {
    /// The extent of each dimension, outermost first. A scalar has shape `[]`.
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage

    /// The number of elements (the product of `shape`).
    @inlinable public var count: Int { storage.count }
    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// A tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        let n = Tensor.elementCount(shape)
        self.shape = shape
        self.storage = TensorStorage(allocating: n)
        storage.pointer.initialize(repeating: value, count: n)
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) { self.init(shape: shape, repeating: 0) }

    /// A tensor holding `values` in row-major order; `values.count` must equal the product of `shape`.
    public init(shape: [Int], _ values: [Float]) {
        let n = Tensor.elementCount(shape)
        precondition(values.count == n, "Tensor: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(allocating: n)
        values.withUnsafeBufferPointer { storage.pointer.initialize(from: $0.baseAddress!, count: n) }
    }

    /// A tensor whose every element the caller writes before reading it: the memory is not cleared.
    /// For outputs of kernels that overwrite all of their destination (gemm with β = 0, elementwise maps).
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(allocating: Tensor.elementCount(shape))
    }

    /// A tensor whose elements are written by `body` (the buffer starts zeroed).
    public init(shape: [Int], initializingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(zeros: shape)
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// A read-only view of `count(shape)` floats at `pointer`, kept valid by `owner` (e.g. a `MappedFile`).
    public init(shape: [Int], viewing pointer: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.storage = TensorStorage(viewing: UnsafeMutablePointer(mutating: pointer), count: Tensor.elementCount(shape), owner: owner)
    }

    init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// The number of elements of a shape; every extent must be non-negative.
    public static func elementCount(_ shape: [Int]) -> Int {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        return shape.reduce(1, *)
    }

    /// The elements in row-major order.
    public var scalars: [Float] { withUnsafeBufferPointer { Array($0) } }

    /// True when this tensor is a read-only view of memory it does not own, or holds a file's 16-bit values
    /// (widened or not): writing to it copies first.
    public var isView: Bool { storage.owner != nil }

    /// Calls `body` with the elements in row-major order.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Calls `body` with writable elements, copying the storage first if it is shared or a view.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUniqueAndWritable()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    @inlinable
    mutating func makeUniqueAndWritable() {
        if storage.owner != nil || !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == count, "Tensor: cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Rows of a matrix (the first extent of a rank-2 tensor).
    public var rows: Int { precondition(rank == 2, "Tensor.rows needs rank 2, shape \(shape)"); return shape[0] }
    /// Columns of a matrix (the second extent of a rank-2 tensor).
    public var columns: Int { precondition(rank == 2, "Tensor.columns needs rank 2, shape \(shape)"); return shape[1] }

    /// Element of a flat index.
    @inlinable public subscript(flat i: Int) -> Float {
        get { storage.pointer[i] }
        set { makeUniqueAndWritable(); storage.pointer[i] = newValue }
    }

    /// Element `(i, j)` of a matrix.
    @inlinable public subscript(i: Int, j: Int) -> Float {
        get { storage.pointer[i * shape[1] + j] }
        set { makeUniqueAndWritable(); storage.pointer[i * shape[1] + j] = newValue }
    }

    /// The transpose of a matrix, as a new contiguous tensor.
    public func transposed() -> Tensor {
        let (r, c) = (rows, columns)
        var out = Tensor(zeros: [c, r])
        out.withUnsafeMutableBufferPointer { dst in
            withUnsafeBufferPointer { src in
                for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
            }
        }
        return out
    }

    /// Rows `range` of a matrix (or leading-dimension slices of any tensor), as a new tensor.
    /// Rows of a tensor of 16-bit values not yet widened are its 16-bit values there (a slice of an F16 file's
    /// expert tensor stays 16-bit).
    public func slicingRows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "Tensor: rows \(range) out of \(shape)")
        let inner = count / max(shape[0], 1)
        var newShape = shape
        newShape[0] = range.count
        if let source = unwidenedHalfSource {
            return Tensor(shape: newShape, widening: HalfSource(bits: source.bits + range.lowerBound * inner, format: source.format,
                                                                owner: source.owner))
        }
        return Tensor(shape: newShape) { dst in
            withUnsafeBufferPointer { src in
                _ = dst.initialize(from: src[(range.lowerBound * inner)..<(range.upperBound * inner)])
            }
        }
    }
}

extension Tensor {
    /// Whether `self` and `other` are the same memory (one tensor held in two places, never copied since): how a
    /// parameter shared by several blocks shows itself (`Model.sharedParameterGroups`).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }
}

extension Tensor: Equatable {
    /// Equal shapes and bit-for-bit equal elements (NaN never equals NaN).
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.elementsEqual(y) } }
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few elements.
    public var description: String {
        // The first elements only: a tensor of 16-bit values is not widened to print them.
        let first = unwidenedHalfSource.map { source in (0..<min(8, count)).map { source[$0] } }
            ?? withUnsafeBufferPointer { Array($0.prefix(8)) }
        let head = first.map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// Copies the rows of `source` (at most `rowLimit` of them) into this tensor from row `row` on.
    public mutating func setRows(from source: Tensor, at row: Int, rowLimit: Int? = nil) {
        let columns = count / max(shape[0], 1)
        let n = min(source.count, (rowLimit ?? source.shape[0]) * columns)
        precondition(row * columns + n <= count, "Tensor: rows out of range")
        withUnsafeMutableBufferPointer { o in
            source.withUnsafeBufferPointer { s in (o.baseAddress! + row * columns).update(from: s.baseAddress!, count: n) }
        }
    }
}
