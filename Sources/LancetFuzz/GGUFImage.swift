import Foundation

/// A GGUF file taken apart into editable pieces, independently of `LancetIO`'s reader, so the fuzzer can
/// write files that reader would never produce: any key, value type, tensor offset, type tag or count.
///
/// Layout (little endian): `GGUF`, version u32, tensor count u64, metadata count u64; each metadata entry as
/// key string (u64 length + bytes), type u32, value; each tensor as name string, dimension count u32,
/// dimensions u64…, type u32, offset u64 (relative to the data section); zero padding to the alignment; data.
struct GGUFImage {
    /// A metadata entry with its value kept as raw bytes (type tag separate).
    struct Entry {
        var key: String
        var type: UInt32
        var payload: [UInt8]
    }

    /// A tensor description.
    struct TensorInfo {
        var name: String
        var dims: [UInt64]
        var type: UInt32
        var offset: UInt64
    }

    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var entries: [Entry] = []
    var tensors: [TensorInfo] = []
    /// Overrides of the counts written in the header (nil: the real counts).
    var tensorCountOverride: UInt64?
    var entryCountOverride: UInt64?
    /// The data section, from its first byte.
    var data: [UInt8] = []

    /// The alignment the file declares (`general.alignment`, default 32).
    var alignment: Int {
        guard let e = entries.first(where: { $0.key == "general.alignment" }), e.type == GGUFTag.u32, e.payload.count == 4 else { return 32 }
        return Int(ByteCursor.u32(e.payload, 0))
    }

    /// Parses a well-formed GGUF (the fixtures Lancet exported); traps on anything else, which would be a fuzzer bug.
    init(parsing bytes: [UInt8]) {
        var c = ByteCursor(bytes)
        magic = c.take(4)
        version = c.u32()
        let tensorCount = Int(c.u64()), entryCount = Int(c.u64())
        for _ in 0..<entryCount {
            let key = c.string()
            let type = c.u32()
            let start = c.position
            c.skipValue(type)
            entries.append(Entry(key: key, type: type, payload: Array(bytes[start..<c.position])))
        }
        for _ in 0..<tensorCount {
            let name = c.string()
            let n = Int(c.u32())
            let dims = (0..<n).map { _ in c.u64() }
            tensors.append(TensorInfo(name: name, dims: dims, type: c.u32(), offset: c.u64()))
        }
        let a = alignment
        let dataStart = (c.position + a - 1) / a * a
        data = Array(bytes[dataStart...])
    }

    /// The file's bytes.
    func serialized() -> [UInt8] {
        var out = ByteSink()
        out.bytes(magic)
        out.u32(version)
        out.u64(tensorCountOverride ?? UInt64(tensors.count))
        out.u64(entryCountOverride ?? UInt64(entries.count))
        for e in entries {
            out.string(e.key)
            out.u32(e.type)
            out.bytes(e.payload)
        }
        for t in tensors {
            out.string(t.name)
            out.u32(UInt32(t.dims.count))
            for d in t.dims { out.u64(d) }
            out.u32(t.type)
            out.u64(t.offset)
        }
        // A hostile alignment (0, 3, 2^31) is written as declared but padded to at most 4 KiB: the file must be
        // refused for its alignment, not made gigabytes long.
        let a = alignment
        if a > 0 && a <= 4096 { while out.data.count % a != 0 { out.data.append(0) } }
        out.bytes(data)
        return out.data
    }

    /// The index of the entry named `key`.
    func entryIndex(_ key: String) -> Int? { entries.firstIndex { $0.key == key } }

    /// Replaces (or appends) `key` with a value of the given type tag and payload.
    mutating func set(_ key: String, type: UInt32, payload: [UInt8]) {
        if let i = entryIndex(key) { entries[i] = Entry(key: key, type: type, payload: payload) } else {
            entries.append(Entry(key: key, type: type, payload: payload))
        }
    }

    /// The byte size a tensor's data takes for its type and dimensions, or nil for an unknown type tag.
    static func byteCount(type: UInt32, dims: [UInt64]) -> Int? {
        var elements = 1
        for d in dims {
            guard d < 1 << 31 else { return nil }
            let (p, overflow) = elements.multipliedReportingOverflow(by: Int(d))
            guard !overflow, p < 1 << 40 else { return nil }
            elements = p
        }
        switch type {
        case 0: return elements * 4      // F32
        case 1, 30: return elements * 2  // F16, BF16
        case 8: return elements / 32 * 34 // Q8_0
        case 2: return elements / 32 * 18 // Q4_0
        case 3: return elements / 32 * 20 // Q4_1
        default: return nil
        }
    }
}

/// GGUF metadata value type tags.
enum GGUFTag {
    static let u8: UInt32 = 0, i8: UInt32 = 1, u16: UInt32 = 2, i16: UInt32 = 3, u32: UInt32 = 4, i32: UInt32 = 5
    static let f32: UInt32 = 6, bool: UInt32 = 7, string: UInt32 = 8, array: UInt32 = 9, u64: UInt32 = 10, i64: UInt32 = 11
    static let f64: UInt32 = 12
}

/// Reads little-endian GGUF fields from a byte array.
struct ByteCursor {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }

    mutating func take(_ n: Int) -> [UInt8] {
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    mutating func u32() -> UInt32 {
        defer { position += 4 }
        return Self.u32(bytes, position)
    }

    mutating func u64() -> UInt64 {
        defer { position += 8 }
        return Self.u64(bytes, position)
    }

    mutating func string() -> String { String(decoding: take(Int(u64())), as: UTF8.self) }

    /// Skips one value of the given type tag.
    mutating func skipValue(_ type: UInt32) {
        switch type {
        case GGUFTag.u8, GGUFTag.i8, GGUFTag.bool: position += 1
        case GGUFTag.u16, GGUFTag.i16: position += 2
        case GGUFTag.u32, GGUFTag.i32, GGUFTag.f32: position += 4
        case GGUFTag.u64, GGUFTag.i64, GGUFTag.f64: position += 8
        case GGUFTag.string: position += Int(u64())
        case GGUFTag.array:
            let element = u32()
            let count = Int(u64())
            for _ in 0..<count { skipValue(element) }
        default: preconditionFailure("fixture GGUF has an unknown value type \(type)")
        }
    }
}

/// Appends little-endian GGUF fields.
struct ByteSink {
    var data: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        data += Array(s.utf8)
    }

    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func f32(_ v: Float) -> [UInt8] { u32(v.bitPattern) }
    static func string(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
}
