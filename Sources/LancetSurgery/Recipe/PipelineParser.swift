/// The recursive-descent parser behind `PipelineText.parse`. Every error is a `RecipeError` at the
/// character where the problem is (`<pipeline>:1:17`), phrased so that a caret under that column
/// explains it.
struct PipelineParser {
    let chars: [Character]
    let source: String
    var index = 0

    init(text: String, source: String) {
        chars = Array(text)
        self.source = source
    }

    // MARK: Grammar

    /// pipeline := pass ('|' pass)*
    mutating func pipeline() throws -> [PassInvocation] {
        skipSpace()
        if atEnd { throw error(at: index, "empty pipeline: expected a pass name, e.g. `magnitude(sparsity=0.5)`") }
        var passes: [PassInvocation] = []
        while true {
            passes.append(try pass(number: passes.count))
            skipSpace()
            if atEnd { return passes }
            switch chars[index] {
            case "|":
                index += 1
                skipSpace()
                if atEnd { throw error(at: index, "expected a pass name after '|' (remove the trailing '|')") }
            case ")": throw error(at: index, "unmatched ')': no '(' is open")
            default: throw error(at: index, "expected '|' between passes, got '\(chars[index])'")
            }
        }
    }

    /// pass := name ('(' [argument (',' argument)*] ')')?
    mutating func pass(number: Int) throws -> PassInvocation {
        let start = index
        let name = try word(allowColon: false, what: "a pass name")
        if name.isEmpty {
            let got = chars[index] == "|" ? "'|' with no pass before it" : "'\(chars[index])'"
            throw error(at: start, "expected a pass name, got \(got)")
        }
        if let problem = PrintableText.problem(name) { throw error(at: start, "the pass name \(OptionValue.quoted(name)) \(problem)") }
        let path = "passes[\(number)]"
        var invocation = PassInvocation(name: name, location: location(start), path: path)
        skipSpace()
        guard !atEnd, chars[index] == "(" else { return invocation }
        let open = index
        index += 1
        var options: [(key: String, value: OptionValue, location: SourceLocation?)] = []
        var seen: Set<String> = []
        let diagnostics = RecipeDiagnostics(file: source)
        skipSpace()
        if !atEnd, chars[index] == ")" {
            index += 1
            return invocation
        }
        while true {
            skipSpace()
            if atEnd { throw error(at: open, "'(' of pass '\(name)' is never closed: expected ')'") }
            let keyStart = index
            let key = try word(allowColon: true, what: "an option name")
            if key.isEmpty { throw error(at: keyStart, "expected an option name (key=value), got '\(chars[index])'") }
            if let problem = PrintableText.problem(key) { throw error(at: keyStart, "the option name \(OptionValue.quoted(key)) \(problem)") }
            skipSpace()
            guard !atEnd, chars[index] == "=" else {
                if atEnd { throw error(at: open, "'(' of pass '\(name)' is never closed: expected ')'") }
                throw error(at: index, "expected '=' after option '\(key)' (options are written key=value)")
            }
            index += 1
            skipSpace()
            if atEnd { throw error(at: index, "expected a value for option '\(key)'") }
            let v = try value()
            guard seen.insert(key).inserted else { throw error(at: keyStart, "option '\(key)' is given twice") }
            let field = RecipeDiagnostics.Field(key: key, value: v, location: location(keyStart))
            switch key {
            case "targets", "ignore":
                let patterns = diagnostics.strings(field, path: "\(path).\(key)", what: "a target pattern")?.map(\.text) ?? []
                if key == "targets" { invocation.selection.targets = patterns } else { invocation.selection.ignore = patterns }
            case "fit":
                invocation.fit = FitSpec.read(v, path: "\(path).fit", at: location(keyStart), diagnostics) ?? FitSpec()
            default:
                options.append((key, v, location(keyStart)))
            }
            if let first = diagnostics.errors.first { throw first }
            skipSpace()
            if atEnd { throw error(at: open, "'(' of pass '\(name)' is never closed: expected ')'") }
            switch chars[index] {
            case ",": index += 1
            case ")":
                index += 1
                invocation.options = .object(options)
                return invocation
            default: throw error(at: index, "expected ',' or ')' after the value of '\(key)', got '\(chars[index])'")
            }
        }
    }

    /// value := string | word | '[' [value (',' value)*] ']' | '{' [key ':' value (',' …)*] '}'
    mutating func value() throws -> OptionValue {
        let start = index
        switch chars[index] {
        case "\"": return .written(try string(), quoted: true, location: location(start))
        case "[":
            index += 1
            var items: [OptionValue] = []
            try sequence(close: "]", opener: start, what: "list") { p in items.append(try p.value()) }
            return .list(items, location: location(start))
        case "{":
            index += 1
            var entries: [(key: String, value: OptionValue, location: SourceLocation?)] = []
            try sequence(close: "}", opener: start, what: "mapping") { p in
                let keyStart = p.index
                let key = try p.word(allowColon: false, what: "a key")
                if key.isEmpty { throw p.error(at: keyStart, "expected a key (key: value) in the mapping") }
                if let problem = PrintableText.problem(key) { throw p.error(at: keyStart, "the key \(OptionValue.quoted(key)) \(problem)") }
                p.skipSpace()
                guard !p.atEnd, p.chars[p.index] == ":" else { throw p.error(at: p.index, "expected ':' after key '\(key)'") }
                p.index += 1
                p.skipSpace()
                if entries.contains(where: { $0.key == key }) { throw p.error(at: keyStart, "key '\(key)' is given twice") }
                entries.append((key, try p.value(), p.location(keyStart)))
            }
            return .object(entries)
        default:
            let text = try word(allowColon: true, what: "a value")
            if text.isEmpty { throw error(at: start, "expected a value, got '\(chars[start])'") }
            return .written(text, quoted: false, location: location(start))
        }
    }

    /// Items separated by ',' up to `close`; the opening bracket is already consumed.
    mutating func sequence(close: Character, opener: Int, what: String, item: (inout PipelineParser) throws -> Void) throws {
        skipSpace()
        if !atEnd, chars[index] == close {
            index += 1
            return
        }
        while true {
            skipSpace()
            if atEnd { throw error(at: opener, "'\(chars[opener])' is never closed: expected '\(close)'") }
            try item(&self)
            skipSpace()
            if atEnd { throw error(at: opener, "'\(chars[opener])' is never closed: expected '\(close)'") }
            if chars[index] == close {
                index += 1
                return
            }
            guard chars[index] == "," else { throw error(at: index, "expected ',' or '\(close)' in the \(what), got '\(chars[index])'") }
            index += 1
        }
    }

    // MARK: Tokens

    /// A bare word (possibly empty) or a double-quoted string.
    mutating func word(allowColon: Bool, what: String) throws -> String {
        if !atEnd, chars[index] == "\"" { return try string() }
        let start = index
        while !atEnd, !chars[index].isWhitespace, !OptionValue.pipelinePunctuation.contains(chars[index]), allowColon || chars[index] != ":" {
            index += 1
        }
        return String(chars[start..<index])
    }

    /// A double-quoted string with escapes; `index` is at the opening quote.
    mutating func string() throws -> String {
        let open = index
        index += 1
        var out = ""
        while true {
            guard !atEnd else { throw error(at: open, "unterminated string: expected a closing '\"'") }
            let c = chars[index]
            index += 1
            if c == "\"" { return out }
            guard c == "\\" else {
                out.append(c)
                continue
            }
            guard !atEnd else { throw error(at: index - 1, "unterminated escape at the end of the text") }
            let e = chars[index]
            index += 1
            switch e {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "u":
                let escapeStart = index - 2
                guard !atEnd, chars[index] == "{", let close = chars[index...].firstIndex(of: "}"),
                      let code = UInt32(String(chars[(index + 1)..<close]), radix: 16), let scalar = Unicode.Scalar(code) else {
                    throw error(at: escapeStart, "bad escape: write \\u{HEX} with a valid code point")
                }
                out.unicodeScalars.append(scalar)
                index = close + 1
            default: throw error(at: index - 2, "unknown escape '\\\(e)': use \\\", \\\\, \\n, \\t, \\r or \\u{HEX}")
            }
        }
    }

    // MARK: Positions

    var atEnd: Bool { index >= chars.count }

    mutating func skipSpace() {
        while !atEnd, chars[index].isWhitespace { index += 1 }
    }

    /// The 1-based line and column of character `i`.
    func location(_ i: Int) -> SourceLocation {
        var line = 1, column = 1
        for c in chars[..<min(i, chars.count)] {
            if c.isNewline { line += 1; column = 1 } else { column += 1 }
        }
        return SourceLocation(file: source, line: line, column: column)
    }

    func error(at i: Int, _ reason: String) -> RecipeError { RecipeError(location(i), path: "", reason) }
}
