import Foundation

/// Decoding of raw recipe options into a pass's typed `Options`, with defaults for missing keys and
/// located errors for unknown keys and wrong types.
enum OptionCoding {
    /// The default options as a JSON object.
    static func encode<T: Encodable>(_ value: T) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// One option key of a pass and its recipe type, derived from a stored property of `Options`.
    struct Property {
        let key: String
        let type: String
    }

    /// The option keys of an `Options` value with their types: every stored property (nil optionals too), under
    /// the snake_case of its name, the one YAML key convention. `encoded` is the value encoded by its `Codable`
    /// conformance (its `CodingKeys`); a property encoded under another key, or an encoded key that names no
    /// property, is a `RegistryError` naming the pass, so a pass cannot have keys that differ from its properties.
    static func properties(of options: Any, encoded: [String: Any], pass: String) throws -> [Property] {
        var result: [Property] = []
        for child in Mirror(reflecting: options).children {
            guard let label = child.label else { continue }
            let key = snakeCase(label)
            let value = unwrapped(child.value)
            if value != nil, encoded[key] == nil {
                throw RegistryError(reason: "pass '\(pass)': option '\(label)' is not encoded under its recipe key '\(key)' "
                                    + "(recipe keys are the snake_case names of the Options properties; check its CodingKeys)")
            }
            result.append(Property(key: key, type: recipeType(child.value, encoded: encoded[key])))
        }
        if let stray = encoded.keys.sorted().first(where: { k in !result.contains { $0.key == k } }) {
            throw RegistryError(reason: "pass '\(pass)': its Options encode the key '\(stray)', which is not the snake_case name of a stored "
                                + "property (recipe keys are the snake_case names of the Options properties)")
        }
        return result
    }

    /// `learningRate` → `learning_rate`, `owlM` → `owl_m`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                if !out.isEmpty { out.append("_") }
                out.append(contentsOf: c.lowercased())
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The payload of an optional (nil for `.none`), or the value itself.
    static func unwrapped(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first.map { unwrapped($0.value) } ?? nil
    }

    /// The recipe type of a property from its Swift type (`Double` → number, `Int` → integer, …), falling back to
    /// the encoded default's shape for other types; optionals are `optional <type>`.
    static func recipeType(_ value: Any, encoded: Any?) -> String {
        var name = String(describing: type(of: value))
        var optional = false
        while name.hasPrefix("Optional<"), name.hasSuffix(">") {
            name = String(name.dropFirst("Optional<".count).dropLast())
            optional = true
        }
        let kind: String
        switch name {
        case "Double", "Float": kind = "number"
        case "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64": kind = "integer"
        case "Bool": kind = "boolean"
        case "String": kind = "string"
        default: kind = name.hasPrefix("Array<") ? "list" : typeName(encoded)
        }
        return optional && kind != "optional" ? "optional \(kind)" : kind
    }

    /// Decodes `raw` over `defaults`; `known` lists the valid keys.
    static func decode<P: SurgeryPass>(_ pass: P.Type, _ raw: OptionValue, known: Set<String>, defaults: [String: Any],
                                       invocation: PassInvocation) throws -> P.Options {
        var merged = defaults
        let base = "\(invocation.path).\(P.name)"
        switch raw {
        case let .object(entries):
            for e in entries {
                guard known.contains(e.key) else {
                    let hint = Suggestion.hint(for: e.key, in: Array(known))
                    let valid = known.sorted().joined(separator: ", ")
                    throw RecipeError(e.location ?? invocation.location, path: "\(base).\(e.key)",
                                      "unknown option '\(e.key)'\(hint); valid options: \(valid.isEmpty ? "none" : valid)")
                }
                if let (suffix, text, location) = firstNonFiniteNumber(in: e.value) {
                    throw RecipeError(location ?? e.location ?? invocation.location, path: "\(base).\(e.key)\(suffix)", "\(text) is not a finite number")
                }
                merged[e.key] = e.value.json
            }
        case let .scalar(s, _, location) where s == "null" || s == "~" || s.isEmpty:
            _ = location
        default:
            throw RecipeError(invocation.location, path: base, "options must be a mapping of option names to values")
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: merged)
            return try JSONDecoder().decode(P.Options.self, from: data)
        } catch let e as DecodingError {
            let (key, reason) = describe(e)
            throw RecipeError(raw.location(ofKey: key) ?? invocation.location, path: key.isEmpty ? base : "\(base).\(key)", reason)
        }
    }

    /// The first number in `value` that is not finite (`1e400`, `.inf`, `.nan`), with its key path below
    /// `value` (`""`, `[2]`, `.k`), its text and location; nil when every number is finite.
    static func firstNonFiniteNumber(in value: OptionValue) -> (suffix: String, text: String, location: SourceLocation?)? {
        if let text = value.nonFiniteNumber { return ("", text, value.location) }
        switch value {
        case .scalar: return nil
        case let .list(items, _):
            for (i, item) in items.enumerated() {
                if let found = firstNonFiniteNumber(in: item) { return ("[\(i)]" + found.suffix, found.text, found.location) }
            }
        case let .object(entries):
            for e in entries {
                if let found = firstNonFiniteNumber(in: e.value) { return (".\(e.key)" + found.suffix, found.text, found.location ?? e.location) }
            }
        }
        return nil
    }

    /// The option key and a readable reason of a decoding error.
    static func describe(_ e: DecodingError) -> (String, String) {
        func key(_ path: [any CodingKey]) -> String { path.first?.stringValue ?? "" }
        switch e {
        case let .typeMismatch(type, c): return (key(c.codingPath), "expected \(typeWord(type)), got a value of another type")
        case let .valueNotFound(type, c): return (key(c.codingPath), "a value (\(typeWord(type))) is required")
        case let .keyNotFound(k, _): return (k.stringValue, "is required")
        case let .dataCorrupted(c): return (key(c.codingPath), c.debugDescription)
        @unknown default: return ("", "\(e)")
        }
    }

    static func typeWord(_ t: Any.Type) -> String {
        switch t {
        case is Double.Type, is Float.Type: "a number"
        case is Int.Type, is UInt64.Type, is Int32.Type: "an integer"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        default: "\(t)"
        }
    }

    /// The recipe type name of a default JSON value.
    static func typeName(_ v: Any?) -> String {
        switch v {
        case nil, is NSNull: return "optional"
        case let n as NSNumber:
            if isBoolean(n) { return "boolean" }
            return n.doubleValue == n.doubleValue.rounded() && !"\(n)".contains(".") ? "integer" : "number"
        case is String: return "string"
        case is [Any]: return "list"
        default: return "object"
        }
    }

    /// Whether a JSON number is really a boolean (Foundation boxes both as NSNumber).
    static func isBoolean(_ n: NSNumber) -> Bool {
        let code = String(cString: n.objCType)
        return code == "c" || code == "B"
    }

    /// A default value as recipe text; a whole `number` (a `Double` option such as `taylor_weight`) keeps a decimal
    /// point, `0.0`, so it does not read as an integer.
    static func text(_ v: Any?, type: String = "") -> String {
        switch v {
        case nil, is NSNull: return "null"
        case let n as NSNumber:
            if isBoolean(n) { return n.boolValue ? "true" : "false" }
            if type.hasSuffix("number"), !"\(n)".contains("."), !"\(n)".contains("e") { return "\(n).0" }
            return "\(n)"
        case let s as String: return s
        case let a as [Any]: return "[" + a.map { text($0) }.joined(separator: ", ") + "]"
        default: return "{…}"
        }
    }
}

/// The nearest valid name to a misspelt one (Levenshtein distance at most a third of its length, ≥ 2).
public enum Suggestion {
    /// The closest candidate, if close enough.
    public static func nearest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(word, $0)) }.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        guard let (best, d) = scored, d <= max(2, word.count / 3) else { return nil }
        return best
    }

    /// " (did you mean 'x'?)" for the closest candidate x, or "" when none is close enough.
    public static func hint(for word: String, in candidates: [String]) -> String {
        nearest(to: word, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// Levenshtein distance.
    public static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var row = Array(0...y.count)
        for i in 1...max(x.count, 1) where !x.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in 1...max(y.count, 1) where !y.isEmpty {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return x.isEmpty ? y.count : row[y.count]
    }
}
