import Foundation

/// JSON values written by hand, in a fixed key order, so that the fuzzer can emit what `JSONSerialization`
/// never would: duplicate keys, numbers out of range, deep nesting, invalid UTF-8.
indirect enum JSONText: Decodable {
    case raw(String)
    case string(String)
    case number(Double)
    case int(Int)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])

    /// Parses JSON bytes from a fixture (object keys in sorted order, which keeps cases reproducible).
    static func parse(_ bytes: [UInt8]) -> JSONText { try! JSONDecoder().decode(JSONText.self, from: Data(bytes)) }

    /// The text.
    var text: String {
        switch self {
        case let .raw(s): return s
        case let .string(s):
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default: out += u.value < 0x20 ? String(format: "\\u%04x", u.value) : String(u)
                }
            }
            return out + "\""
        case let .number(d): return d.isFinite ? "\(d)" : (d.isNaN ? "NaN" : (d > 0 ? "1e400" : "-1e400"))
        case let .int(i): return "\(i)"
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case let .object(pairs): return "{" + pairs.map { JSONText.string($0.0).text + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    /// The member named `key` of an object.
    subscript(key: String) -> JSONText? {
        get {
            guard case let .object(pairs) = self else { return nil }
            return pairs.first { $0.0 == key }?.1
        }
        set {
            guard case var .object(pairs) = self else { return }
            if let i = pairs.firstIndex(where: { $0.0 == key }) {
                if let newValue { pairs[i].1 = newValue } else { pairs.remove(at: i) }
            } else if let newValue {
                pairs.append((key, newValue))
            }
            self = .object(pairs)
        }
    }

    /// The object's keys.
    var keys: [String] {
        guard case let .object(pairs) = self else { return [] }
        return pairs.map(\.0)
    }

    /// Nested arrays `depth` deep (a stack-depth probe for parsers).
    static func nested(_ depth: Int) -> JSONText { .raw(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)) }

    /// A hostile replacement for a value: wrong type, out-of-range number, deep nesting.
    static func hostile(_ r: inout FuzzRandom) -> JSONText {
        r.pick([.int(0), .int(-1), .int(1_000_000_000_000), .number(3.5), .number(1e400), .raw("NaN"), .string("64"), .null,
                .bool(true), .array([]), .object([]), nested(100_000), .int(Int.max), .raw("-0"), .raw("1e-400")])
    }
}

/// Random byte edits of a text: flips, deletions, insertions of structural characters.
enum TextEdits {
    static func mangle(_ bytes: inout [UInt8], _ r: inout FuzzRandom) -> String {
        let n = 1 + r.below(4)
        for _ in 0..<n where !bytes.isEmpty {
            let at = r.below(bytes.count)
            switch r.below(3) {
            case 0: bytes[at] ^= UInt8(1 + r.below(255))
            case 1: bytes.remove(at: at)
            default: bytes.insert(r.pick(Array("{}[]\",:\\0-e.\u{0}\u{FF}".utf8)), at: at)
            }
        }
        return "bytes-mangled(\(n))"
    }
}

extension JSONText {
    /// Decodes any JSON value; a number is an `.int` when it is written as an integer.
    init(from decoder: Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [JSONText] = []
            while !list.isAtEnd { items.append(try list.decode(JSONText.self)) }
            self = .array(items)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            self = .object(try object.allKeys.map(\.stringValue).sorted().map { ($0, try object.decode(JSONText.self, forKey: AnyKey(stringValue: $0)!)) })
            return
        }
        let v = try decoder.singleValueContainer()
        if v.decodeNil() { self = .null } else if let b = try? v.decode(Bool.self) { self = .bool(b) } else if let i = try? v.decode(Int.self) {
            self = .int(i)
        } else if let d = try? v.decode(Double.self) { self = .number(d) } else { self = .string(try v.decode(String.self)) }
    }

    /// Any object key.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
