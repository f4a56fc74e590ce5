/// Reading of `stages:` and pass entries:
///
/// ```yaml
/// stages:
///   - name: sparsify
///     passes:
///       - magnitude: {sparsity: 0.5}      # exactly one key that names the pass; its options
///         targets: ["blocks.*.mlp.*"]     # optional: what it may cut
///         ignore: ["blocks.0.*"]          # optional: what it must leave alone
///         fit: {method: lstsq, damping: 0.01}
///       - wanda                           # a bare name runs the pass with its defaults
/// ```
extension RecipeReader {
    mutating func stages(_ field: RecipeDiagnostics.Field) -> [Stage] {
        guard case let .list(items, location) = field.value else {
            diagnostics.report(field.valueLocation, "stages", "expected a list of stages (`- name: …` items), got \(diagnostics.describe(field.value))")
            return []
        }
        guard !items.isEmpty else {
            diagnostics.report(location ?? field.location, "stages", "needs at least one stage with at least one pass")
            return []
        }
        var names: [String: Int] = [:]
        return items.enumerated().compactMap { i, item in
            guard let s = stage(item, index: i, at: location ?? field.location) else { return nil }
            if let first = names[s.name] {
                diagnostics.report(item.location, "stages[\(i)].name", "stage name '\(s.name)' is already used by stages[\(first)]")
            }
            names[s.name] = i
            return s
        }
    }

    mutating func stage(_ value: OptionValue, index: Int, at fallback: SourceLocation?) -> Stage? {
        let path = "stages[\(index)]"
        guard let fields = diagnostics.mapping(value, path: path, at: fallback, allowed: RecipeParser.stageKeys, what: "a stage") else { return nil }
        var name = "stage\(index + 1)"
        if let f = fields["name"], let s = diagnostics.string(f, path: "\(path).name", what: "a stage name") {
            if s.isEmpty { diagnostics.report(f.valueLocation, "\(path).name", "must not be empty") } else { name = s }
        }
        guard let f = fields["passes"] else {
            diagnostics.reportMissing("passes", in: value, at: value.location ?? fallback, path: "\(path).passes", "missing 'passes': a stage needs at least one pass")
            return nil
        }
        guard case let .list(items, location) = f.value else {
            diagnostics.report(f.valueLocation, "\(path).passes", "expected a list of passes (`- name: {options}` items), got \(diagnostics.describe(f.value))")
            return nil
        }
        if items.isEmpty { diagnostics.report(location ?? f.location, "\(path).passes", "a stage needs at least one pass") }
        let passes = items.enumerated().compactMap { j, item in pass(item, path: "\(path).passes[\(j)]", at: location ?? f.location) }
        return Stage(name: name, passes: passes)
    }

    /// One pass entry: a mapping with one pass-name key plus optional `targets`, `ignore` and `fit`, or a
    /// bare pass name.
    func pass(_ value: OptionValue, path: String, at fallback: SourceLocation?) -> PassInvocation? {
        if case let .scalar(name, _, location) = value, !value.isNull {
            if let problem = PrintableText.problem(name) {
                diagnostics.report(location ?? fallback, path, "the pass name \(OptionValue.quoted(name)) \(problem)")
                return nil
            }
            return PassInvocation(name: name, location: location ?? fallback ?? diagnostics.fileLocation, path: path)
        }
        guard case let .object(entries) = value else {
            diagnostics.report(value.location ?? fallback, path, "expected a pass (`- name: {options}`), got \(diagnostics.describe(value))")
            return nil
        }
        let names = entries.filter { !RecipeParser.passEntryKeys.contains($0.key) }
        guard let named = names.first else {
            diagnostics.report(value.location ?? fallback, path, "a pass entry needs a pass name key, e.g. `- magnitude: {sparsity: 0.5}`, besides \(RecipeParser.passEntryKeys.joined(separator: ", "))")
            return nil
        }
        if names.count > 1 {
            let list = names.map { "'\($0.key)'" }.joined(separator: ", ")
            diagnostics.report(names[1].location ?? value.location, "\(path).\(names[1].key)",
                               "a pass entry names exactly one pass, found \(list); start each pass with its own `- ` (or check the spelling of targets, ignore, fit)")
            return nil
        }
        let location = named.location ?? fallback ?? diagnostics.fileLocation
        var invocation = PassInvocation(name: named.key, location: location, path: path)
        switch named.value {
        case .object: invocation.options = named.value
        case let v where v.isNull: invocation.options = .object([])
        default:
            diagnostics.report(named.value.location ?? location, "\(path).\(named.key)",
                               "the options of pass '\(named.key)' must be a mapping (`\(named.key): {key: value}`) or empty, got \(diagnostics.describe(named.value))")
        }
        for e in entries where RecipeParser.passEntryKeys.contains(e.key) {
            let field = RecipeDiagnostics.Field(key: e.key, value: e.value, location: e.location)
            switch e.key {
            case "targets", "ignore":
                if e.value.isNull { continue }
                guard let patterns = diagnostics.strings(field, path: "\(path).\(e.key)", what: "a target pattern") else { continue }
                if e.key == "targets" { invocation.selection.targets = patterns.map(\.text) } else { invocation.selection.ignore = patterns.map(\.text) }
            default:
                guard let fit = FitSpec.read(e.value, path: "\(path).fit", at: e.location, diagnostics) else { continue }
                invocation.fit = fit
            }
        }
        // An entry with a problem in its options, targets or fit is still returned, with defaults in their place,
        // so that `RecipeCheck` also reports the problems of its other parts; the diagnostics hold the problem.
        return invocation
    }
}
