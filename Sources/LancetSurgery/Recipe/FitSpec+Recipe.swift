/// Reading, checking and printing of `fit:` settings, shared by YAML recipes and the textual pipeline.
///
/// Written as a bare method (`fit: lstsq`, `fit=lstsq`) or a mapping
/// (`fit: {method: regional, steps: 20, learning_rate: 0.0001}`); the canonical form is the bare method
/// when every other setting has its default.
extension FitSpec {
    /// The keys of the mapping form, in canonical order.
    public static let keys = ["method", "damping", "steps", "learning_rate", "batch", "router_rounds", "teacher"]

    /// The settings that are out of range, as (key, reason): damping ≥ 0, steps ≥ 1,
    /// learning_rate > 0, batch ≥ 1, router_rounds ≥ 0.
    public var problems: [(key: String, reason: String)] {
        var out: [(key: String, reason: String)] = []
        if !(damping >= 0 && damping.isFinite) { out.append(("damping", "must be a finite number ≥ 0, got \(damping)")) }
        if steps < 1 { out.append(("steps", "must be at least 1, got \(steps)")) }
        if !(learningRate > 0 && learningRate.isFinite) { out.append(("learning_rate", "must be a finite number > 0, got \(learningRate)")) }
        if batch < 1 { out.append(("batch", "must be at least 1, got \(batch)")) }
        if routerRounds < 0 { out.append(("router_rounds", "must be at least 0, got \(routerRounds)")) }
        if method == .reform && teacher == .model {
            out.append(("teacher", "reform matches each layer to the dense layer on the block's own inputs; teacher: model applies to lstsq and regional"))
        }
        return out
    }

    /// The canonical recipe value: nil when every setting is the default, the method's name when only the
    /// method differs, else a mapping of the method and the settings that differ from their defaults.
    public var optionValue: OptionValue? {
        let d = FitSpec()
        var entries: [(key: String, value: OptionValue, location: SourceLocation?)] = []
        func add(_ key: String, _ text: String) { entries.append((key, .scalar(text, quoted: false, location: nil), nil)) }
        if damping != d.damping { add("damping", "\(damping)") }
        if steps != d.steps { add("steps", "\(steps)") }
        if learningRate != d.learningRate { add("learning_rate", "\(learningRate)") }
        if batch != d.batch { add("batch", "\(batch)") }
        if routerRounds != d.routerRounds { add("router_rounds", "\(routerRounds)") }
        if teacher != d.teacher { add("teacher", teacher.rawValue) }
        let method = OptionValue.scalar(self.method.rawValue, quoted: false, location: nil)
        if entries.isEmpty { return self.method == d.method ? nil : method }
        return .object([("method", method, nil)] + entries)
    }

    /// Reads `fit:` settings from `value` (a method name, a mapping, or null for the defaults), reporting
    /// unknown keys and methods, wrong types and out-of-range values; nil after a report.
    static func read(_ value: OptionValue, path: String, at fallback: SourceLocation?, _ diagnostics: RecipeDiagnostics) -> FitSpec? {
        if value.isNull { return FitSpec() }
        if case let .scalar(name, _, location) = value {
            return method(name, path: path, at: location ?? fallback, diagnostics).map { FitSpec(method: $0) }
        }
        guard let fields = diagnostics.mapping(value, path: path, at: fallback, allowed: keys, what: "fit") else { return nil }
        var fit = FitSpec()
        var ok = true
        if let f = fields["method"] {
            if let name = diagnostics.string(f, path: joinPath(path, "method"), what: "a fit method"),
               let m = method(name, path: joinPath(path, "method"), at: f.valueLocation, diagnostics) {
                fit.method = m
            } else { ok = false }
        } else {
            diagnostics.reportMissing("method", in: value, at: value.location ?? fallback, path: path, "missing 'method' (one of \(methodList))")
            ok = false
        }
        if let f = fields["damping"] { if let x = diagnostics.number(f, path: joinPath(path, "damping")) { fit.damping = x } else { ok = false } }
        if let f = fields["steps"] { if let n = diagnostics.integer(f, path: joinPath(path, "steps"), minimum: 1) { fit.steps = n } else { ok = false } }
        if let f = fields["learning_rate"] { if let x = diagnostics.number(f, path: joinPath(path, "learning_rate")) { fit.learningRate = x } else { ok = false } }
        if let f = fields["batch"] { if let n = diagnostics.integer(f, path: joinPath(path, "batch"), minimum: 1) { fit.batch = n } else { ok = false } }
        if let f = fields["router_rounds"] {
            if let n = diagnostics.integer(f, path: joinPath(path, "router_rounds"), minimum: 0) { fit.routerRounds = n } else { ok = false }
        }
        if let f = fields["teacher"] {
            if let name = diagnostics.string(f, path: joinPath(path, "teacher"), what: "a fit teacher"),
               let t = teacher(name, path: joinPath(path, "teacher"), at: f.valueLocation, diagnostics) {
                fit.teacher = t
            } else { ok = false }
        }
        guard ok else { return nil }
        let problems = fit.problems
        for p in problems { diagnostics.report(fields[p.key]?.valueLocation ?? fallback, joinPath(path, p.key), p.reason) }
        return problems.isEmpty ? fit : nil
    }

    static func teacher(_ name: String, path: String, at location: SourceLocation?, _ diagnostics: RecipeDiagnostics) -> Teacher? {
        if let t = Teacher(rawValue: name) { return t }
        let names = Teacher.allCases.map(\.rawValue)
        diagnostics.report(location, path, "unknown fit teacher '\(name)'\(Suggestion.hint(for: name, in: names)); valid teachers: \(names.joined(separator: ", "))")
        return nil
    }

    /// `none, lstsq, regional`.
    static var methodList: String { Method.allCases.map(\.rawValue).joined(separator: ", ") }

    static func method(_ name: String, path: String, at location: SourceLocation?, _ diagnostics: RecipeDiagnostics) -> Method? {
        if let m = Method(rawValue: name) { return m }
        let hint = Suggestion.hint(for: name, in: Method.allCases.map(\.rawValue))
        diagnostics.report(location, path, "unknown fit method '\(name)'\(hint); valid methods: \(methodList)")
        return nil
    }
}
