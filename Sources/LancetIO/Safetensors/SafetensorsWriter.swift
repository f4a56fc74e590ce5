import LancetTensor

/// Collects named Float32 tensors and writes them as a safetensors file, storing each as F32, F16 or BF16.
///
/// The output is deterministic: tensors are laid out by element size (widest first, which keeps every
/// tensor aligned to its element size) and then by name, whatever order they were added in; the header
/// lists `__metadata__` first, then the tensors in data order, and is padded with spaces so the data
/// section starts at a multiple of 8. `__metadata__` always holds `"format": "pt"` unless the caller sets
/// `format`, because transformers refuses safetensors files without it. Writes are atomic.
///
/// ```swift
/// var writer = SafetensorsWriter(metadata: ["lancet.recipe": recipeText])
/// writer.add("model.norm.weight", norm)
/// writer.add("model.embed_tokens.weight", embedding, as: .bf16)
/// try writer.write(to: "out/model.safetensors")
/// ```
public struct SafetensorsWriter {
    /// One tensor to write.
    public struct Entry {
        /// The tensor's name in the file.
        public let name: String
        /// The values.
        public let tensor: Tensor
        /// How the values are stored.
        public let dtype: SafetensorsDType
        /// Bytes the stored data takes.
        public var byteCount: Int { dtype.byteCount(elements: tensor.count)! }
    }

    /// The `__metadata__` to write (string to string).
    public var metadata: [String: String]
    /// The tensors in the order they were added.
    public private(set) var entries: [Entry] = []
    private var names: Set<String> = []

    /// A writer with the given `__metadata__` (`format` defaults to `pt`).
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
        if self.metadata["format"] == nil { self.metadata["format"] = "pt" }
    }

    /// Adds a tensor stored as `dtype` (F32, F16 or BF16; U8 for tensors of whole numbers 0…255, such as masks).
    /// Adding the same name twice is a programmer error.
    public mutating func add(_ name: String, _ tensor: Tensor, as dtype: SafetensorsDType = .f32) {
        precondition(dtype.isWritable || dtype == .u8, "SafetensorsWriter: cannot store \(dtype.name) (writable: F32, F16, BF16, U8)")
        precondition(!name.isEmpty && name != "__metadata__", "SafetensorsWriter: invalid tensor name '\(name)'")
        precondition(names.insert(name).inserted, "SafetensorsWriter: tensor '\(name)' added twice")
        entries.append(Entry(name: name, tensor: tensor, dtype: dtype))
    }

    /// The tensors in the order they are laid out in the file: widest element first, then by name.
    public var layout: [Entry] { entries.sorted(by: Self.layoutOrder) }

    /// Total bytes of tensor data (excluding the header).
    public var dataByteCount: Int { entries.reduce(0) { $0 + $1.byteCount } }

    /// Writes all tensors to one file at `path`, atomically. With `overwrite: false` an existing file is an error.
    public func write(to path: String, overwrite: Bool = true) throws {
        try Self.write(layout[...], metadata: metadata, to: path, overwrite: overwrite)
    }

    /// Widest element first, then by name.
    static func layoutOrder(_ a: Entry, _ b: Entry) -> Bool {
        a.dtype.bitWidth != b.dtype.bitWidth ? a.dtype.bitWidth > b.dtype.bitWidth : a.name < b.name
    }

    /// Writes `entries` (already in layout order) as one safetensors file.
    static func write(_ entries: ArraySlice<Entry>, metadata: [String: String], to path: String, overwrite: Bool) throws {
        let header = headerBytes(entries, metadata: metadata)
        try AtomicFile.write(to: path, overwrite: overwrite) { sink in
            try sink.write(littleEndian: UInt64(header.count))
            try sink.write(header)
            for entry in entries { try writeData(of: entry, to: sink) }
        }
    }

    /// The JSON header, padded with spaces so that 8 + its length is a multiple of 8.
    static func headerBytes(_ entries: ArraySlice<Entry>, metadata: [String: String]) -> [UInt8] {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for entry in entries {
            let end = offset + entry.byteCount
            let shape = entry.tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(entry.name)):{\"dtype\":\"\(entry.dtype.name)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        while bytes.count % 8 != 0 { bytes.append(UInt8(ascii: " ")) }
        return bytes
    }

    /// Streams one tensor's data in its storage type, converting a chunk at a time.
    static func writeData(of entry: Entry, to sink: FileSink) throws {
        try entry.tensor.withUnsafeBufferPointer { values in
            switch entry.dtype {
            case .f32:
                #if _endian(little)
                try sink.write(UnsafeRawBufferPointer(values))
                #else
                for v in values { try sink.write(littleEndian: v.bitPattern) }
                #endif
            case .f16, .bf16:
                let chunk = 1 << 16
                var buffer = [UInt16](repeating: 0, count: min(chunk, values.count))
                var start = 0
                while start < values.count {
                    let n = min(chunk, values.count - start)
                    for i in 0..<n {
                        let v = values[start + i]
                        let bits = entry.dtype == .f16 ? HalfPrecision.float16Bits(v) : HalfPrecision.bfloat16Bits(v)
                        buffer[i] = bits.littleEndian
                    }
                    try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
                    start += n
                }
            case .u8:
                let bytes = values.map { v -> UInt8 in
                    precondition(v >= 0 && v <= 255 && v.rounded() == v, "SafetensorsWriter: \(v) in '\(entry.name)' is not a U8 value")
                    return UInt8(v)
                }
                try bytes.withUnsafeBytes { try sink.write($0) }
            default:
                preconditionFailure("SafetensorsWriter: unwritable dtype \(entry.dtype.name)")
            }
        }
    }

    /// `s` as a JSON string literal.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
