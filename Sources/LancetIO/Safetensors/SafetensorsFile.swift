import Foundation
import LancetTensor

/// The description of one tensor in a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public let name: String
    /// The stored element type.
    public let dtype: SafetensorsDType
    /// Row-major shape, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// The byte range of the data, relative to the start of the file's data section (the header's `data_offsets`).
    public let dataOffsets: Range<Int>

    /// Number of elements (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes the data occupies.
    public var byteCount: Int { dataOffsets.count }

    var offsetText: String { "[\(dataOffsets.lowerBound), \(dataOffsets.upperBound)]" }
}

/// A safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header, then the data.
///
/// Opening validates the whole header (see `SafetensorsHeader`); a malformed file throws a `SafetensorsError`
/// naming the file, the tensor and the problem. F32 tensors are read as zero-copy views of the mapping;
/// F16, BF16 and F64 are converted to Float32. Other dtypes are listed but can only be read as raw bytes.
public final class SafetensorsFile: @unchecked Sendable {
    /// The file's path.
    public let path: String
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Tensor descriptions in data order.
    public let tensors: [SafetensorsTensorInfo]
    /// Offset of the data section from the start of the file (8 + header length).
    public let dataOffset: Int
    private let file: MappedFile
    private let index: [String: Int]

    /// Opens and validates the safetensors file at `path`.
    public convenience init(path: String) throws {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let FileMappingError.cannotMap(_, reason) {
            throw SafetensorsError(path, reason)
        }
        try self.init(mapped: file)
    }

    /// Parses an already-mapped file.
    public init(mapped file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw SafetensorsError(path, "not a safetensors file: only \(bytes.count) bytes, less than the 8-byte header length")
        }
        let length = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard length >= 2 else { throw SafetensorsError(path, "header length is \(length); a header holds at least '{}'") }
        guard length <= UInt64(SafetensorsHeader.maximumLength) else {
            throw SafetensorsError(path, "header length \(length) is larger than the \(SafetensorsHeader.maximumLength)-byte limit (not a safetensors file?)")
        }
        guard 8 + Int(length) <= bytes.count else {
            throw SafetensorsError(path, "header length \(length) runs past the end of the file (\(bytes.count) bytes); the file may be truncated")
        }
        dataOffset = 8 + Int(length)
        let json = Data(bytes[8..<dataOffset])
        let header = try SafetensorsHeader(json: json, dataSize: bytes.count - dataOffset, path: path)
        metadata = header.metadata
        tensors = header.tensors
        index = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    /// Tensor names in data order.
    public var tensorNames: [String] { tensors.map(\.name) }

    /// The description of the tensor called `name`, or nil.
    public func info(_ name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// True when the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The stored bytes of a tensor (little-endian elements).
    public func rawBytes(of info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataOffset + info.dataOffsets.lowerBound)..<(dataOffset + info.dataOffsets.upperBound)])
    }

    /// The tensor called `name` as Float32. Throws if there is no such tensor or its dtype is not a float type.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else { throw SafetensorsError(path, tensor: name, "no such tensor in this file") }
        return try tensor(info)
    }

    /// The tensor described by `info` as Float32: a zero-copy view for aligned F32 data, the stored values widened
    /// when first read for aligned F16 and BF16 data (`Tensor.halfSource`), a converted copy otherwise.
    public func tensor(_ info: SafetensorsTensorInfo) throws -> Tensor {
        let raw = rawBytes(of: info)
        switch info.dtype {
        case .f32:
            #if _endian(little)
            if let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                return Tensor(shape: info.shape, viewing: base.assumingMemoryBound(to: Float.self), owner: file)
            }
            #endif
            return Tensor(shape: info.shape) { out in
                for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
        case .f16:
            if let t = Tensor(shape: info.shape, storedHalf: raw, format: .f16, owner: file) { return t }
            return Tensor(shape: info.shape) { out in
                for i in 0..<out.count { out[i] = HalfPrecision.float(float16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            }
        case .bf16:
            if let t = Tensor(shape: info.shape, storedHalf: raw, format: .bf16, owner: file) { return t }
            return Tensor(shape: info.shape) { out in
                for i in 0..<out.count { out[i] = HalfPrecision.float(bfloat16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            }
        case .f64:
            return Tensor(shape: info.shape) { out in
                for i in 0..<out.count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            }
        default:
            throw SafetensorsError(path, tensor: info.name, "dtype \(info.dtype.name) cannot be read as Float32 (readable: F32, F16, BF16, F64); use rawBytes(of:)")
        }
    }
}
