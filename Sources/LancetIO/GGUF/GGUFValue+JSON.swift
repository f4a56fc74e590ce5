import Foundation

extension GGUFValue {
    /// The value as tagged JSON, exact for every type: `{"type": "uint32", "value": 5}`; an array as
    /// `{"type": "array", "elements": "string", "value": [...]}` with its elements in the same form without the tag
    /// (nested arrays keep theirs). 64-bit integers and floats are written as decimal text (shortest round-trip for
    /// floats), so no JSON reader rounds them.
    public var taggedJSON: [String: Any] {
        if case let .array(type, items) = self {
            return ["type": "array", "elements": Self.typeName(type), "value": items.map(\.untaggedJSON)]
        }
        return ["type": Self.typeName(type), "value": untaggedJSON]
    }

    /// Reads `taggedJSON` back; nil when `json` is not such a value.
    public init?(taggedJSON json: Any) {
        guard let object = json as? [String: Any], let name = object["type"] as? String, let type = Self.type(named: name),
              let raw = object["value"] else { return nil }
        if type == .array {
            guard let elementName = object["elements"] as? String, let elements = Self.type(named: elementName),
                  let items = raw as? [Any] else { return nil }
            var values: [GGUFValue] = []
            values.reserveCapacity(items.count)
            for item in items {
                guard let v = GGUFValue(untaggedJSON: item, type: elements) else { return nil }
                values.append(v)
            }
            self = .array(elements, values)
        } else {
            guard let v = GGUFValue(untaggedJSON: raw, type: type) else { return nil }
            self = v
        }
    }

    /// Key–value pairs as one JSON text (an array of `[key, taggedJSON]`, in order).
    public static func jsonText(of pairs: [(String, GGUFValue)]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: pairs.map { [$0.0, $0.1.taggedJSON] as [Any] })
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads `jsonText(of:)` back; nil when `text` is not such a list.
    public static func pairs(fromJSONText text: String) -> [(String, GGUFValue)]? {
        guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else { return nil }
        var pairs: [(String, GGUFValue)] = []
        for entry in list {
            guard let pair = entry as? [Any], pair.count == 2, let key = pair[0] as? String,
                  let value = GGUFValue(taggedJSON: pair[1]) else { return nil }
            pairs.append((key, value))
        }
        return pairs
    }

    private var untaggedJSON: Any {
        switch self {
        case .uint8, .int8, .uint16, .int16, .uint32, .int32: intValue!
        case let .uint64(v): String(v)
        case let .int64(v): String(v)
        case let .float32(v): String(v)
        case let .float64(v): String(v)
        case let .bool(v): v
        case let .string(v): v
        case .array: taggedJSON
        }
    }

    private init?(untaggedJSON raw: Any, type: GGUFValueType) {
        func integer() -> Int? { (raw as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } }
        switch type {
        case .uint8: guard let v = integer().flatMap(UInt8.init(exactly:)) else { return nil }; self = .uint8(v)
        case .int8: guard let v = integer().flatMap(Int8.init(exactly:)) else { return nil }; self = .int8(v)
        case .uint16: guard let v = integer().flatMap(UInt16.init(exactly:)) else { return nil }; self = .uint16(v)
        case .int16: guard let v = integer().flatMap(Int16.init(exactly:)) else { return nil }; self = .int16(v)
        case .uint32: guard let v = integer().flatMap(UInt32.init(exactly:)) else { return nil }; self = .uint32(v)
        case .int32: guard let v = integer().flatMap(Int32.init(exactly:)) else { return nil }; self = .int32(v)
        case .uint64: guard let v = (raw as? String).flatMap(UInt64.init) else { return nil }; self = .uint64(v)
        case .int64: guard let v = (raw as? String).flatMap(Int64.init) else { return nil }; self = .int64(v)
        case .float32: guard let v = (raw as? String).flatMap(Float.init) else { return nil }; self = .float32(v)
        case .float64: guard let v = (raw as? String).flatMap(Double.init) else { return nil }; self = .float64(v)
        case .bool: guard let v = raw as? Bool else { return nil }; self = .bool(v)
        case .string: guard let v = raw as? String else { return nil }; self = .string(v)
        case .array: guard let v = GGUFValue(taggedJSON: raw) else { return nil }; self = v
        }
    }

    private static func typeName(_ type: GGUFValueType) -> String { "\(type)" }

    private static func type(named name: String) -> GGUFValueType? { GGUFValueType.allCases.first { typeName($0) == name } }
}
