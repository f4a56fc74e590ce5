import Foundation

/// A recipe value as written (YAML scalar, list or mapping, or a textual-pipeline argument), with its
/// source location, before it is decoded into a pass's typed `Options`.
public indirect enum OptionValue: Sendable, Equatable {
    /// A scalar as written (`0.5`, `true`, `2:4`, `name`); `quoted` keeps `"0.5"` a string.
    case scalar(String, quoted: Bool, location: SourceLocation?)
    /// A list.
    case list([OptionValue], location: SourceLocation?)
    /// A mapping, keys in source order.
    case object([(key: String, value: OptionValue, location: SourceLocation?)])

    public static func == (a: OptionValue, b: OptionValue) -> Bool {
        switch (a, b) {
        case let (.scalar(x, qx, _), .scalar(y, qy, _)): return x == y && qx == qy
        case let (.list(x, _), .list(y, _)): return x == y
        case let (.object(x), .object(y)): return x.map(\.key) == y.map(\.key) && zip(x, y).allSatisfy { $0.value == $1.value }
        default: return false
        }
    }

    /// The keys of a mapping (empty for other values).
    public var keys: [String] {
        if case let .object(entries) = self { return entries.map(\.key) }
        return []
    }

    /// The JSON value a `JSONDecoder` can decode into `Options`: unquoted scalars that read as numbers or
    /// booleans become numbers or booleans, everything else strings.
    public var json: Any {
        switch self {
        case let .scalar(s, quoted, _):
            if quoted { return s }
            if s == "true" { return true }
            if s == "false" { return false }
            if s == "null" || s == "~" { return NSNull() }
            if let i = Int(s) { return i }
            if let d = Double(s) { return d }
            return s
        case let .list(items, _): return items.map(\.json)
        case let .object(entries):
            var d: [String: Any] = [:]
            for e in entries { d[e.key] = e.value.json }
            return d
        }
    }

    /// Canonical text: `0.5`, `"a b"`, `[1, 2]`, `{k: v}`.
    public var canonicalText: String {
        switch self {
        case let .scalar(s, quoted, _):
            let needsQuotes = quoted && (Double(s) != nil || s == "true" || s == "false") || s.isEmpty
                || s.contains { " ,()|=[]{}\"".contains($0) }
            return needsQuotes ? "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : s
        case let .list(items, _): return "[" + items.map(\.canonicalText).joined(separator: ", ") + "]"
        case let .object(entries): return "{" + entries.map { "\($0.key): \($0.value.canonicalText)" }.joined(separator: ", ") + "}"
        }
    }
}
