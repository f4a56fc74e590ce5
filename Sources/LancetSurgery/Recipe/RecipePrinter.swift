/// Prints a `Recipe` as canonical YAML that `RecipeParser` reads back to an equal recipe: keys in the
/// documented order, paths as resolved (absolute), settings in flow style on one line, each pass as
/// `- name: {options}` with `targets`, `ignore` and `fit` only when they are not the defaults, and
/// strings quoted only where YAML or the recipe's types need it.
public enum RecipePrinter {
    /// The canonical YAML text of `recipe`.
    public static func yaml(_ recipe: Recipe) -> String {
        var lines = ["lancet: \(recipe.version)"]
        if let model = recipe.model { lines.append("model: " + scalar(model)) }
        if recipe.calibration != CalibrationSpec() {
            let c = recipe.calibration
            var fields = c.data.map { ["data: " + scalar($0)] } ?? []
            fields += ["samples: \(c.samples)", "context: \(c.context)", "seed: \(c.seed)"]
            if let sampler = c.namedSampler { fields.append("sampler: \(sampler.rawValue)") }
            lines.append("calibration: {" + fields.joined(separator: ", ") + "}")
        }
        lines.append(recipe.stages.isEmpty ? "stages: []" : "stages:")
        for stage in recipe.stages {
            lines.append("  - name: " + scalar(stage.name))
            lines.append(stage.passes.isEmpty ? "    passes: []" : "    passes:")
            for pass in stage.passes { lines += passLines(pass) }
        }
        if let e = recipe.evaluate {
            let data = e.data.count == 1 ? scalar(e.data[0]) : "[" + e.data.map { scalar($0) }.joined(separator: ", ") + "]"
            var fields = ["data: " + data, "context: \(e.context)"]
            if let m = e.maxWindows { fields.append("max_windows: \(m)") }
            if let f = e.scoreFrom { fields.append("score_from: \(f)") }
            lines.append("evaluate: {" + fields.joined(separator: ", ") + "}")
        }
        if let output = recipe.output { lines.append("output: " + scalar(output)) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The list item of one pass, indented for `stages[].passes`.
    static func passLines(_ pass: PassInvocation) -> [String] {
        let options: OptionValue = if case .object = pass.options { pass.options } else { .object([]) }
        var lines = ["      - " + scalar(pass.name) + ": " + flow(options)]
        func patterns(_ list: [String]) -> String { "[" + list.map { scalar($0) }.joined(separator: ", ") + "]" }
        if !pass.selection.targets.isEmpty { lines.append("        targets: " + patterns(pass.selection.targets)) }
        if !pass.selection.ignore.isEmpty { lines.append("        ignore: " + patterns(pass.selection.ignore)) }
        if let fit = pass.fit.optionValue { lines.append("        fit: " + flow(fit)) }
        return lines
    }

    /// A value in YAML flow style.
    static func flow(_ v: OptionValue) -> String {
        switch v {
        case let .scalar(s, quoted, _): scalar(s, quoted: quoted)
        case let .list(items, _): "[" + items.map(flow).joined(separator: ", ") + "]"
        case let .object(entries): "{" + entries.map { scalar($0.key) + ": " + flow($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// A scalar, plain when that reads back as the same text and type, else double-quoted.
    static func scalar(_ s: String, quoted: Bool = false) -> String {
        quoted || !isPlainSafe(s) ? doubleQuoted(s) : s
    }

    /// Whether `s` can be written as a plain YAML scalar in block and flow context and reads back as
    /// itself: letters, digits and `._/*+-:` only, starting with a letter, digit, `.`, `_` or `/` (or a
    /// sign before a digit or `.`), not ending with `:`, and not another spelling of null or a boolean.
    static func isPlainSafe(_ s: String) -> Bool {
        guard let first = s.first, s.last != ":" else { return false }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "._/*+-:".contains($0)) }
        guard s.allSatisfy(allowed) else { return false }
        let second = s.dropFirst().first
        let startsWell = first.isLetter || first.isNumber || "._/".contains(first)
            || ("+-".contains(first) && second.map { $0.isNumber || $0 == "." } == true)
        return startsWell && YAMLTree.normalizedPlain(s) == s
    }

    /// `s` as a YAML double-quoted scalar.
    static func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.properties.generalCategory == .control || u.value == 0x85 || u.value == 0x2028 || u.value == 0x2029 || u.value == 0xFEFF {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += u.value <= 0xFF ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                        : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
