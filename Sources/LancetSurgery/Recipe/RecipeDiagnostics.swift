/// Collects located errors while a recipe (YAML or textual pipeline) is read, and reads typed values out
/// of the `OptionValue` tree: every helper reports what is wrong where it was written and returns nil, so
/// one pass over a recipe reports every independent problem.
final class RecipeDiagnostics {
    /// The file errors are reported against when nothing better is known.
    let file: String
    /// The problems found so far, in source order of discovery.
    private(set) var errors: [RecipeError] = []

    init(file: String) { self.file = file }

    /// The problems in source order (line, then column; unlocated ones last).
    var sortedErrors: [RecipeError] {
        func key(_ e: RecipeError) -> (Int, Int) { e.location.line > 0 ? (e.location.line, e.location.column) : (Int.max, 0) }
        return errors.enumerated().sorted { a, b in key(a.element) != key(b.element) ? key(a.element) < key(b.element) : a.offset < b.offset }.map(\.element)
    }

    /// The file itself, without a line.
    var fileLocation: SourceLocation { SourceLocation(file: file) }

    /// Records a problem.
    func report(_ location: SourceLocation?, _ path: String, _ reason: String) {
        errors.append(RecipeError(location ?? fileLocation, path: path, reason))
    }

    /// Records a problem thrown by a nested reader.
    func record(_ error: RecipeError) { errors.append(error) }

    /// One entry of a mapping.
    struct Field {
        let key: String
        let value: OptionValue
        let location: SourceLocation?
        /// Where the value was written, else its key.
        var valueLocation: SourceLocation? { value.location ?? location }
    }

    /// The entries of the mapping `value`, by key, after checking every key against `allowed` (unknown
    /// keys are reported with the nearest valid one); nil when `value` is not a mapping.
    func mapping(_ value: OptionValue, path: String, at fallback: SourceLocation?, allowed: [String], what: String) -> [String: Field]? {
        guard case let .object(entries) = value else {
            report(value.location ?? fallback, path, "\(what) must be a mapping with keys \(allowed.joined(separator: ", ")), got \(describe(value))")
            return nil
        }
        var fields: [String: Field] = [:]
        for e in entries {
            guard allowed.contains(e.key) else {
                let hint = Suggestion.hint(for: e.key, in: allowed)
                report(e.location ?? fallback, joinPath(path, e.key), "unknown key '\(e.key)'\(hint); valid keys: \(allowed.joined(separator: ", "))")
                continue
            }
            fields[e.key] = Field(key: e.key, value: e.value, location: e.location)
        }
        return fields
    }

    /// Reports the missing required key `key` of mapping `value`, unless a misspelling of it was written
    /// (that was already reported as an unknown key with this suggestion).
    func reportMissing(_ key: String, in value: OptionValue, at location: SourceLocation?, path: String, _ reason: String) {
        let misspelt = value.keys.contains { $0 != key && Suggestion.nearest(to: $0, in: [key]) != nil }
        if !misspelt { report(location, path, reason) }
    }

    /// A scalar as a string of printable text (`PrintableText`); nil for null, non-scalars and text with
    /// control characters.
    func string(_ f: Field, path: String, what: String = "a string") -> String? {
        guard case let .scalar(s, _, _) = f.value, !f.value.isNull else {
            report(f.valueLocation, path, "expected \(what), got \(describe(f.value))")
            return nil
        }
        if let problem = PrintableText.problem(s) {
            report(f.valueLocation, path, "\(OptionValue.quoted(s)) \(problem)")
            return nil
        }
        return s
    }

    /// An integer of at least `minimum`.
    func integer(_ f: Field, path: String, minimum: Int) -> Int? {
        guard case let .scalar(s, false, _) = f.value, let n = Int(s) else {
            report(f.valueLocation, path, "expected an integer, got \(describe(f.value))")
            return nil
        }
        guard n >= minimum else {
            report(f.valueLocation, path, minimum == 1 ? "must be positive, got \(n)" : "must be at least \(minimum), got \(n)")
            return nil
        }
        return n
    }

    /// A non-negative integer up to 2⁶⁴ − 1.
    func unsigned(_ f: Field, path: String) -> UInt64? {
        guard case let .scalar(s, false, _) = f.value, let n = UInt64(s) else {
            report(f.valueLocation, path, "expected a non-negative integer, got \(describe(f.value))")
            return nil
        }
        return n
    }

    /// A finite number; `1e400`, `.inf` and `.nan` are reported as not finite.
    func number(_ f: Field, path: String) -> Double? {
        if let s = f.value.nonFiniteNumber {
            report(f.valueLocation, path, "\(s) is not a finite number")
            return nil
        }
        guard case let .scalar(s, false, _) = f.value, let x = Double(s) else {
            report(f.valueLocation, path, "expected a number, got \(describe(f.value))")
            return nil
        }
        return x
    }

    /// A string or a list of strings (a single string is a one-item list); nil after a report.
    func strings(_ f: Field, path: String, what: String) -> [(text: String, location: SourceLocation?)]? {
        let items: [OptionValue]
        switch f.value {
        case .scalar where !f.value.isNull: items = [f.value]
        case let .list(list, _): items = list
        default:
            report(f.valueLocation, path, "expected \(what) or a list of them, got \(describe(f.value))")
            return nil
        }
        var out: [(text: String, location: SourceLocation?)] = []
        var ok = true
        for (i, item) in items.enumerated() {
            guard case let .scalar(s, _, location) = item, !item.isNull, !s.isEmpty else {
                report(item.location ?? f.valueLocation, "\(path)[\(i)]", "expected \(what), got \(describe(item))")
                ok = false
                continue
            }
            if let problem = PrintableText.problem(s) {
                report(location ?? f.valueLocation, "\(path)[\(i)]", "\(OptionValue.quoted(s)) \(problem)")
                ok = false
                continue
            }
            out.append((s, location))
        }
        return ok ? out : nil
    }

    /// A short description of a value for "expected X, got Y".
    func describe(_ v: OptionValue) -> String {
        switch v {
        case let .scalar(s, quoted, _):
            if v.isNull { return "nothing (null)" }
            return quoted ? "the string \"\(s)\"" : "'\(s)'"
        case let .list(items, _): return items.isEmpty ? "an empty list" : "a list"
        case let .object(entries): return entries.isEmpty ? "an empty mapping" : "a mapping"
        }
    }
}

/// `a.b`, or `b` when `a` is empty.
func joinPath(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
