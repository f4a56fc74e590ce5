/// A bounds-checked little-endian cursor over a GGUF header. Every read past the end throws.
struct GGUFByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var position = 0
    /// Arrays may nest; deeper nesting than this is rejected as malformed.
    static let maximumArrayDepth = 8
    /// Storage reserved ahead for a count read from the file is capped at this many items, so that a corrupt
    /// count costs no more memory than the items actually parsed.
    static let maximumReservation = 1 << 16

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw truncated(what()) }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += n
        return T(littleEndian: v)
    }

    /// A 64-bit count, checked against the bytes left (each item needs at least `minimumBytesEach`).
    mutating func readCount(_ what: @autoclosure () -> String, minimumBytesEach: Int) throws -> Int {
        let raw = try read(UInt64.self, what())
        guard raw <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw GGUFError(path, "\(what()) is \(raw), more than the \(remaining) bytes left can hold; the file is corrupt or truncated")
        }
        return Int(raw)
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let length = try readCount("length of \(what())", minimumBytesEach: 1)
        // A specialised validator that stops at the first bad byte, then a decode that cannot need repair:
        // tokenizers hold ~10^5 strings, and a corrupt length can make one string span megabytes.
        let s: String? = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]).withMemoryRebound(to: UInt8.self) {
            Self.isValidUTF8($0) ? String(decoding: $0, as: UTF8.self) : nil
        }
        guard let s else { throw GGUFError(path, "\(what()) is not valid UTF-8") }
        position += length
        return s
    }

    /// Reads one value of `type`. `context` names it in errors; it is built only when an error is thrown,
    /// since a tokenizer's arrays hold hundreds of thousands of elements.
    mutating func readValue(_ type: GGUFValueType, context: @autoclosure () -> String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, context()))
        case .int8: return .int8(try read(Int8.self, context()))
        case .uint16: return .uint16(try read(UInt16.self, context()))
        case .int16: return .int16(try read(Int16.self, context()))
        case .uint32: return .uint32(try read(UInt32.self, context()))
        case .int32: return .int32(try read(Int32.self, context()))
        case .uint64: return .uint64(try read(UInt64.self, context()))
        case .int64: return .int64(try read(Int64.self, context()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, context())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, context())))
        case .bool:
            let b = try read(UInt8.self, context())
            guard b <= 1 else { throw GGUFError(path, "\(context()): boolean byte is \(b), expected 0 or 1") }
            return .bool(b == 1)
        case .string: return .string(try readString(context()))
        case .array:
            guard depth < Self.maximumArrayDepth else { throw GGUFError(path, "\(context()): arrays nested deeper than \(Self.maximumArrayDepth)") }
            let raw = try read(UInt32.self, "element type of \(context())")
            guard let elementType = GGUFValueType(rawValue: raw) else {
                throw GGUFError(path, "\(context()): unknown array element type \(raw)")
            }
            let minimum: Int = switch elementType {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .array: 12
            default: 8
            }
            let count = try readCount("element count of \(context())", minimumBytesEach: minimum)
            var items: [GGUFValue] = []
            items.reserveCapacity(min(count, Self.maximumReservation))
            for i in 0..<count {
                items.append(try readValue(elementType, context: "\(context())[\(i)]", depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }

    /// True when `b` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
    static func isValidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let lead = b[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            // Sequence length and the allowed range of the second byte, by lead byte.
            let length: Int, low: UInt8, high: UInt8
            switch lead {
            case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
            case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
            case 0xED: (length, low, high) = (3, 0x80, 0x9F)
            case 0xE1...0xEF: (length, low, high) = (3, 0x80, 0xBF)
            case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
            case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
            case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
            default: return false
            }
            guard n - i >= length, (low...high).contains(b[i + 1]) else { return false }
            for k in 2..<length where b[i + k] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }

    private func truncated(_ what: String) -> GGUFError {
        GGUFError(path, "file ends at byte \(bytes.count) while reading \(what); the file is truncated")
    }
}
