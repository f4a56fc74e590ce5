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
            if s == "null" || s == "~" || s.isEmpty { return NSNull() }
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

    /// A scalar as read from a recipe, with `quoted` kept only where it changes the meaning: `"0.5"` stays a
    /// quoted string, while `"abc"` and `abc` are the same value. Parsers build scalars with this, so
    /// recipes that differ only in optional quotes compare equal and print the same.
    public static func written(_ text: String, quoted: Bool, location: SourceLocation?) -> OptionValue {
        .scalar(text, quoted: quoted && !readsAsString(text), location: location)
    }

    /// Whether unquoted `text` reads as a string (not a number, boolean or null; YAML's `.inf` and `.nan`
    /// read as numbers that are not finite).
    public static func readsAsString(_ text: String) -> Bool {
        OptionValue.scalar(text, quoted: false, location: nil).json is String && !yamlNonFiniteSpellings.contains(text)
    }

    /// The text of an unquoted scalar that reads as a number but is not finite, else nil: `1e400` (which
    /// overflows to infinity), `inf`, `nan`, and YAML's `.inf`, `-.inf`, `.nan`. JSON cannot carry such a
    /// number, so pass options and fit settings refuse it by name.
    public var nonFiniteNumber: String? {
        guard case let .scalar(s, false, _) = self else { return nil }
        if let x = Double(s) { return x.isFinite ? nil : s }
        return Self.yamlNonFiniteSpellings.contains(s) ? s : nil
    }

    /// YAML 1.2's spellings of infinity and NaN.
    static let yamlNonFiniteSpellings: Set<String> = [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"]

    /// Where the value was written: a scalar's or list's own location, a mapping's first key.
    public var location: SourceLocation? {
        switch self {
        case let .scalar(_, _, location), let .list(_, location): location
        case let .object(entries): entries.first?.location
        }
    }

    /// Whether this is the null scalar (`null`, `~`, or nothing).
    public var isNull: Bool {
        if case let .scalar(s, false, _) = self { return s == "null" || s == "~" || s.isEmpty }
        return false
    }

    /// Canonical textual-pipeline text: `0.5`, `"a b"`, `[1, 2]`, `{k: v}`; strings are quoted only when
    /// they would otherwise read as another type or contain pipeline punctuation, with `\"`, `\\`, `\n`,
    /// `\t`, `\r` and `\u{…}` escapes.
    public var canonicalText: String {
        switch self {
        case let .scalar(s, quoted, _):
            let needsQuotes = quoted && !Self.readsAsString(s) || !Self.isBareWord(s, allowColon: true)
            return needsQuotes ? Self.quoted(s) : s
        case let .list(items, _): return "[" + items.map(\.canonicalText).joined(separator: ", ") + "]"
        case let .object(entries):
            let body = entries.map { (Self.isBareWord($0.key, allowColon: false) ? $0.key : Self.quoted($0.key)) + ": " + $0.value.canonicalText }
            return "{" + body.joined(separator: ", ") + "}"
        }
    }

    /// Characters that end a bare word in the textual pipeline.
    static let pipelinePunctuation: Set<Character> = [",", "(", ")", "|", "=", "[", "]", "{", "}", "\""]

    /// Whether `s` can be written without quotes in the textual pipeline.
    static func isBareWord(_ s: String, allowColon: Bool) -> Bool {
        !s.isEmpty && !s.contains { $0.isWhitespace || pipelinePunctuation.contains($0) || (!allowColon && $0 == ":") || $0.isNewline }
            && !s.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// `s` in double quotes with escapes.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.properties.generalCategory == .control {
                    out += "\\u{" + String(u.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
