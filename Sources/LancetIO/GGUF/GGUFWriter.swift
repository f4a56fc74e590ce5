import LancetTensor

/// Builds a GGUF version 3 file: metadata in the order given, then tensors in the order added, each
/// tensor's data at an offset that is a multiple of the alignment (`general.alignment`, default 32).
///
/// Tensors are stored as F32, F16, BF16 or Q8_0 (encoded at write time, a chunk at a time), or copied
/// unchanged from already-encoded bytes (`addRaw`), so that rewriting a quantised file is bit-exact.
/// The file is written atomically (`AtomicFile`): a failed write leaves no partial file behind.
///
/// ```swift
/// var w = GGUFWriter(metadata: [("general.architecture", .string("llama"))])
/// try w.add(name: "token_embd.weight", tensor: embedding, as: .q8_0)
/// try w.write(to: "out.gguf", overwrite: false)
/// ```
public struct GGUFWriter {
    /// Metadata entries, written in this order. `write` rejects duplicate keys and malformed arrays.
    public var metadata: [(key: String, value: GGUFValue)]
    /// Data alignment in bytes: a power of two.
    public let alignment: Int
    /// Tensors in the order they will be written.
    public private(set) var tensors: [GGUFTensorInfo] = []
    private var sources: [Source] = []
    private var names: Set<String> = []

    /// Where a tensor's bytes come from.
    private enum Source {
        case encode(Tensor, GGMLType)
        case bytes([UInt8])
        case file(GGUFFile, GGUFTensorInfo)
    }

    /// The name used in errors raised before the destination is known.
    static let errorPath = "GGUFWriter"

    /// A writer with the given metadata. The alignment is `metadata`'s `general.alignment` when present
    /// (which must then equal `alignment` if that is given), else `alignment ?? 32`; a non-default
    /// alignment that the metadata does not state is appended to it as `general.alignment` (u32).
    public init(metadata: [(String, GGUFValue)] = [], alignment: Int? = nil) {
        self.metadata = metadata.map { (key: $0.0, value: $0.1) }
        let stated = metadata.last { $0.0 == "general.alignment" }?.1.intValue
        precondition(stated == nil || alignment == nil || stated == alignment,
                     "GGUFWriter: alignment \(alignment!) differs from the metadata's general.alignment \(stated!)")
        let resolved = stated ?? alignment ?? GGUFFile.defaultAlignment
        precondition(resolved > 0 && resolved & (resolved - 1) == 0 && resolved <= 1 << 20,
                     "GGUFWriter: alignment must be a power of two up to 2^20, got \(resolved)")
        self.alignment = resolved
        if stated == nil && resolved != GGUFFile.defaultAlignment {
            self.metadata.append((key: "general.alignment", value: .uint32(UInt32(resolved))))
        }
    }

    /// Adds a tensor, to be stored as `type` (F32, F16, BF16 or Q8_0). Its row-major shape is written as
    /// ggml dimensions, innermost first; the last extent (the row length) must be a multiple of the
    /// type's block size. A rank-0 tensor is written as one element.
    public mutating func add(name: String, tensor: Tensor, as type: GGMLType = .f32) throws {
        guard GGMLQuantizer.writableTypes.contains(type) else {
            throw GGUFError(Self.errorPath, "tensor '\(name)': cannot encode \(type.name) (writable types: \(GGMLQuantizer.writableTypes.map(\.name).joined(separator: ", "))); use addRaw for already-encoded data")
        }
        let dimensions = tensor.rank == 0 ? [1] : Array(tensor.shape.reversed())
        try append(name: name, dimensions: dimensions, type: type, source: .encode(tensor, type))
    }

    /// Adds a tensor whose data is already encoded as `type`, copied unchanged.
    /// `dimensions` are ggml's, innermost first; `bytes.count` must be the size they take as `type`.
    public mutating func addRaw(name: String, dimensions: [Int], type: GGMLType, bytes: [UInt8]) throws {
        try append(name: name, dimensions: dimensions, type: type, source: .bytes(bytes), byteCount: bytes.count)
    }

    /// Adds tensor `info` of `file` with its stored bytes unchanged (read from the mapping at write time).
    public mutating func addRaw(_ info: GGUFTensorInfo, of file: GGUFFile, name: String? = nil) throws {
        try append(name: name ?? info.name, dimensions: info.dimensions, type: info.type, source: .file(file, info))
    }

    private mutating func append(name: String, dimensions: [Int], type: GGMLType, source: Source, byteCount: Int? = nil) throws {
        let what = "tensor '\(name)'"
        guard !names.contains(name) else { throw GGUFError(Self.errorPath, "\(what) is added twice") }
        guard (1...4).contains(dimensions.count), dimensions.allSatisfy({ $0 > 0 }) else {
            throw GGUFError(Self.errorPath, "\(what): dimensions \(dimensions) must be 1 to 4 positive extents")
        }
        guard dimensions[0] % type.blockSize == 0 else {
            throw GGUFError(Self.errorPath, "\(what): row length \(dimensions[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
        }
        let info = GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: nextOffset)
        if let byteCount, byteCount != info.byteCount {
            throw GGUFError(Self.errorPath, "\(what): \(byteCount) bytes given, \(dimensions) as \(type.name) takes \(info.byteCount)")
        }
        names.insert(name)
        tensors.append(info)
        sources.append(source)
    }

    /// Offset (from the data section) where the next tensor's data goes.
    private var nextOffset: Int {
        guard let last = tensors.last else { return 0 }
        return Self.padded(last.offset + last.byteCount, alignment)
    }

    static func padded(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Writes the file atomically. With `overwrite: false` an existing file is an error.
    /// Throws `GGUFError` (naming `path`) for invalid metadata or a value that cannot be encoded,
    /// and `FileWriteError` when the file system fails.
    public func write(to path: String, overwrite: Bool = true) throws {
        try validateMetadata(path)
        try AtomicFile.write(to: path, overwrite: overwrite) { sink in
            var header = GGUFByteWriter()
            header.append(GGUFFile.magic)
            header.append(UInt32(3))
            header.append(UInt64(tensors.count))
            header.append(UInt64(metadata.count))
            for (key, value) in metadata {
                header.append(key)
                header.append(value.type.rawValue)
                header.append(value)
            }
            for t in tensors {
                header.append(t.name)
                header.append(UInt32(t.dimensions.count))
                for d in t.dimensions { header.append(UInt64(d)) }
                header.append(t.type.rawValue)
                header.append(UInt64(t.offset))
            }
            try sink.write(header.bytes)
            try sink.pad(toMultipleOf: alignment)
            let dataStart = sink.offset
            for (t, source) in zip(tensors, sources) {
                precondition(sink.offset == dataStart + t.offset, "GGUFWriter: data offset drifted at '\(t.name)'")
                try writeData(source, of: t, to: sink, path: path)
                try sink.pad(toMultipleOf: alignment)
            }
        }
    }

    private func writeData(_ source: Source, of info: GGUFTensorInfo, to sink: FileSink, path: String) throws {
        switch source {
        case let .bytes(b):
            try sink.write(b)
        case let .file(file, original):
            try sink.write(file.rawBytes(of: original))
        case let .encode(tensor, type):
            // A chunk of whole rows at a time keeps memory flat for big tensors.
            let chunk = max(1, (1 << 16) / info.dimensions[0]) * info.dimensions[0]
            var scratch = [UInt8](repeating: 0, count: type.byteCount(elements: min(chunk, info.elementCount)))
            try tensor.withUnsafeBufferPointer { values in
                var start = 0
                while start < values.count {
                    let n = min(chunk, values.count - start)
                    let bytes = type.byteCount(elements: n)
                    do {
                        try scratch.withUnsafeMutableBytes { out in
                            try GGMLQuantizer.encode(type, from: UnsafeBufferPointer(rebasing: values[start..<(start + n)]),
                                                     into: UnsafeMutableRawBufferPointer(rebasing: out[0..<bytes]))
                        }
                    } catch let e as GGMLQuantizer.NonFinite {
                        throw GGUFError(path, "tensor '\(info.name)': element \(start + e.index) is \(e.value), which \(type.name) cannot store")
                    }
                    try scratch.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
                    start += n
                }
            }
        }
    }

    /// Rejects duplicate keys, a `general.alignment` that differs from the writer's, arrays whose elements
    /// differ from their declared type, and arrays nested deeper than readers accept.
    private func validateMetadata(_ path: String) throws {
        var seen: Set<String> = []
        let stated = metadata.first { $0.key == "general.alignment" }?.value
        guard stated?.intValue ?? GGUFFile.defaultAlignment == alignment else {
            throw GGUFError(path, "metadata 'general.alignment' is \(stated.map { "\($0)" } ?? "absent"), but the writer aligns to \(alignment)")
        }
        for (key, value) in metadata {
            guard seen.insert(key).inserted else { throw GGUFError(path, "metadata key '\(key)' appears twice") }
            try validate(value, "metadata '\(key)'", depth: 0, path)
        }
    }

    private func validate(_ value: GGUFValue, _ context: String, depth: Int, _ path: String) throws {
        guard case let .array(elementType, items) = value else { return }
        guard depth < GGUFByteReader.maximumArrayDepth else {
            throw GGUFError(path, "\(context): arrays nested deeper than \(GGUFByteReader.maximumArrayDepth)")
        }
        for (i, item) in items.enumerated() {
            guard item.type == elementType else {
                throw GGUFError(path, "\(context): array of \(elementType) holds a \(item.type) at index \(i)")
            }
            try validate(item, "\(context)[\(i)]", depth: depth + 1, path)
        }
    }
}

/// A little-endian byte buffer for a GGUF header.
struct GGUFByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes.
    mutating func append(_ s: String) {
        append(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    /// A value's payload (its type tag is written by the caller; arrays write their element type and count).
    mutating func append(_ value: GGUFValue) {
        switch value {
        case let .uint8(v): append(v)
        case let .int8(v): append(v)
        case let .uint16(v): append(v)
        case let .int16(v): append(v)
        case let .uint32(v): append(v)
        case let .int32(v): append(v)
        case let .uint64(v): append(v)
        case let .int64(v): append(v)
        case let .float32(v): append(v.bitPattern)
        case let .float64(v): append(v.bitPattern)
        case let .bool(v): append(UInt8(v ? 1 : 0))
        case let .string(s): append(s)
        case let .array(t, items):
            append(t.rawValue)
            append(UInt64(items.count))
            for item in items { append(item) }
        }
    }
}
