import LancetTensor

/// The description of one tensor in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// ggml's dimensions, innermost first (`ne[0]` is the row length).
    public let dimensions: [Int]
    /// The storage type.
    public let type: GGMLType
    /// Byte offset of the data from the start of the file's data section.
    public let offset: Int

    /// Row-major shape, outermost first: the reverse of `dimensions`.
    public var shape: [Int] { dimensions.reversed() }
    /// Number of elements.
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Bytes the data occupies in the file.
    public var byteCount: Int { type.byteCount(elements: elementCount) }
}

/// A GGUF file (versions 2 and 3), memory-mapped: metadata in file order, tensor infos, and tensor data.
///
/// Opening validates the whole header: magic, version, every metadata value, every tensor's type,
/// shape, alignment and extent, and that the tensors' data lie back to back as llama.cpp requires
/// (see `checkLayout`). A malformed file throws a `GGUFError` that names the file and the problem.
public final class GGUFFile: @unchecked Sendable {
    /// The file's path.
    public let path: String
    /// The format version (2 or 3).
    public let version: UInt32
    /// Metadata entries in file order.
    public let metadataEntries: [(key: String, value: GGUFValue)]
    /// Metadata by key.
    public let metadata: [String: GGUFValue]
    /// Tensor descriptions in file order.
    public let tensors: [GGUFTensorInfo]
    /// Data alignment in bytes (`general.alignment`, default 32).
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataOffset: Int
    private let file: MappedFile
    private let index: [String: Int]

    /// The default data alignment of the format.
    public static let defaultAlignment = 32
    static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian

    /// Opens and validates a GGUF file.
    public convenience init(path: String) throws {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let FileMappingError.cannotMap(_, reason) {
            throw GGUFError(path, reason)
        }
        try self.init(mapped: file)
    }

    /// Parses an already-mapped file.
    public init(mapped file: MappedFile) throws {
        self.file = file
        self.path = file.path
        var r = GGUFByteReader(bytes: file.bytes, path: file.path)
        guard file.size >= 4 else { throw GGUFError(path, "not a GGUF file: only \(file.size) bytes") }
        let magic = try r.read(UInt32.self, "magic")
        guard magic == Self.magic else {
            throw GGUFError(path, "not a GGUF file: magic is \(Self.hex(magic)), expected 'GGUF'")
        }
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            let hint = version.byteSwapped == 2 || version.byteSwapped == 3 ? "; this is a big-endian GGUF, which Lancet does not read" : ""
            throw GGUFError(path, "unsupported GGUF version \(version) (supported: 2, 3)\(hint)")
        }
        let tensorCount = try r.readCount("tensor count", minimumBytesEach: 24)
        let kvCount = try r.readCount("metadata count", minimumBytesEach: 12)

        var entries: [(key: String, value: GGUFValue)] = []
        var dict: [String: GGUFValue] = [:]
        entries.reserveCapacity(min(kvCount, GGUFByteReader.maximumReservation))
        for i in 0..<kvCount {
            let key = try r.readString("key of metadata entry \(i)")
            let typeRaw = try r.read(UInt32.self, "type of metadata '\(key)'")
            guard let type = GGUFValueType(rawValue: typeRaw) else {
                throw GGUFError(path, "metadata '\(key)': unknown value type \(typeRaw)")
            }
            let value = try r.readValue(type, context: "metadata '\(key)'", depth: 0)
            guard dict[key] == nil else { throw GGUFError(path, "metadata key '\(key)' appears twice") }
            dict[key] = value
            entries.append((key, value))
        }
        metadataEntries = entries
        metadata = dict

        if let a = dict["general.alignment"] {
            guard let n = a.intValue, n > 0, n & (n - 1) == 0, n <= 1 << 20 else {
                throw GGUFError(path, "metadata 'general.alignment': must be a power of two, got \(a)")
            }
            alignment = n
        } else {
            alignment = Self.defaultAlignment
        }

        var infos: [GGUFTensorInfo] = []
        var names: [String: Int] = [:]
        infos.reserveCapacity(min(tensorCount, GGUFByteReader.maximumReservation))
        for i in 0..<tensorCount {
            let name = try r.readString("name of tensor \(i)")
            let nDims = try r.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard (1...4).contains(nDims) else {
                throw GGUFError(path, "tensor '\(name)': \(nDims) dimensions (must be 1 to 4)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let raw = try r.read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard raw > 0, raw < 1 << 40 else { throw GGUFError(path, "tensor '\(name)': dimension \(d) is \(raw)") }
                let (p, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
                guard !overflow, p < 1 << 42 else { throw GGUFError(path, "tensor '\(name)': element count overflows") }
                elements = p
                dims.append(Int(raw))
            }
            let typeRaw = try r.read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: typeRaw) else {
                throw GGUFError(path, "tensor '\(name)': unknown ggml type \(typeRaw)")
            }
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError(path, "tensor '\(name)': row length \(dims[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            let offset = try r.read(UInt64.self, "offset of tensor '\(name)'")
            guard offset < 1 << 48 else {
                throw GGUFError(path, "tensor '\(name)': data offset \(offset) is beyond any possible file size")
            }
            guard Int(offset) % alignment == 0 else {
                throw GGUFError(path, "tensor '\(name)': data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            guard names[name] == nil else { throw GGUFError(path, "tensor '\(name)' appears twice") }
            names[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: Int(offset)))
        }
        tensors = infos
        index = names
        dataOffset = (r.position + alignment - 1) / alignment * alignment
        try Self.checkLayout(infos, dataOffset: dataOffset, alignment: alignment, fileSize: file.size, path: path)
    }

    /// Checks that the tensors' data tile the data section as llama.cpp requires: in file order, each
    /// tensor starts where the previous one ends, padded to the alignment (so no two tensors share or
    /// overlap bytes, and each spans exactly what its type and shape imply), every range lies inside the
    /// file, and nothing but padding follows the last tensor. A tensor whose type was relabelled to a
    /// smaller one (Q4_1 data declared Q4_0) leaves bytes no tensor claims, and is refused.
    static func checkLayout(_ infos: [GGUFTensorInfo], dataOffset: Int, alignment: Int, fileSize: Int, path: String) throws {
        func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        func describe(_ t: GGUFTensorInfo) -> String { "'\(t.name)' (\(t.type.name) \(t.shape), \(t.byteCount) bytes)" }
        var expected = 0
        var starts: [Int: String] = [:]
        for (i, t) in infos.enumerated() {
            if dataOffset + t.offset + t.byteCount > fileSize {
                throw GGUFError(path, "tensor '\(t.name)': data (\(t.byteCount) bytes at offset \(dataOffset + t.offset)) runs past the end of the file (\(fileSize) bytes); the file may be truncated")
            }
            if t.offset != expected {
                if let other = starts[t.offset] {
                    throw GGUFError(path, "tensor '\(t.name)': data offset \(t.offset) is also the offset of tensor '\(other)'; two tensors cannot share data")
                }
                let previous = i == 0 ? "the data section starts at offset 0" : "the previous tensor \(describe(infos[i - 1])) ends at \(expected) after padding to \(alignment)"
                let problem = t.offset < expected
                    ? "overlaps the tensor before it"
                    : "leaves \(t.offset - expected) bytes that no tensor claims; the previous tensor's type or shape does not match its data"
                throw GGUFError(path, "tensor '\(t.name)': data offset \(t.offset) \(problem) (\(previous); tensors must be stored back to back in file order)")
            }
            starts[t.offset] = t.name
            expected += padded(t.byteCount)
        }
        let dataSize = fileSize - dataOffset
        if let last = infos.last, dataSize > expected {
            throw GGUFError(path, "\(dataSize - expected) bytes after the last tensor \(describe(last)) are claimed by no tensor; its type or shape does not match its data")
        }
    }

    /// The description of the tensor called `name`, if present.
    public func info(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The raw stored bytes of a tensor.
    public func rawBytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataOffset + info.offset)..<(dataOffset + info.offset + info.byteCount)])
    }

    /// The tensor called `name`, dequantised to Float32, in row-major shape (the reverse of ggml's dimensions).
    /// F32 tensors are zero-copy views of the mapped file, F16 and BF16 ones widen from it when first read.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else { throw GGUFError(path, "no tensor named '\(name)'") }
        return try tensor(info)
    }

    /// The tensor described by `info`, dequantised to Float32. F16 and BF16 tensors keep their 16-bit values in the
    /// mapped file and widen them when first read as Float (`Tensor.halfSource`): a runtime multiplying by 16-bit
    /// weights uses them as they are.
    public func tensor(_ info: GGUFTensorInfo) throws -> Tensor {
        let raw = rawBytes(of: info)
        if info.type == .f32, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return Tensor(shape: info.shape, viewing: base.assumingMemoryBound(to: Float.self), owner: file)
        }
        if let format = info.type.halfFormat, let t = Tensor(shape: info.shape, storedHalf: raw, format: format, owner: file) {
            return t
        }
        var out = Tensor(zeros: info.shape)
        do {
            try out.withUnsafeMutableBufferPointer { try GGMLDequantizer.dequantize(info.type, from: raw, into: $0) }
        } catch let e as GGMLDequantizer.Unsupported {
            throw GGUFError(path, "tensor '\(info.name)': \(e)")
        }
        return out
    }

    /// The string at a metadata key, or nil.
    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    /// The integer at a metadata key, or nil.
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    /// The number at a metadata key, or nil.
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}
