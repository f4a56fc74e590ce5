import Foundation
import LancetData

/// Reads a YAML recipe (format in `Docs/Recipes.md`) into a `Recipe`, with every problem reported as a
/// `RecipeError` located at its line and column:
///
/// ```yaml
/// lancet: 1
/// model: models/SmolLM2-135M-Instruct.Q4_1.gguf
/// calibration: {data: ../shared/data/c4/c4-train.00000-of-01024.first1041docs.text-only.json.gz, samples: 128}
/// stages:
///   - name: sparsify
///     passes:
///       - magnitude: {sparsity: 0.5}
///         targets: ["blocks.*.mlp.*"]
///         fit: lstsq
/// output: out/smollm2-sparse.gguf
/// ```
///
/// The parser checks the recipe's shape (keys, types, ranges); `RecipeValidator` then checks it against
/// the pass registry, the model and the file system.
public enum RecipeParser {
    /// The recipe's top-level keys.
    public static let topLevelKeys = ["lancet", "model", "calibration", "stages", "evaluate", "output"]
    /// The keys of `calibration:`.
    public static let calibrationKeys = ["data", "samples", "context", "seed", "sampler"]
    /// The keys of `evaluate:`.
    public static let evaluateKeys = ["data", "context", "max_windows", "score_from"]
    /// The keys of a stage.
    public static let stageKeys = ["name", "passes"]
    /// The keys of a pass entry besides the pass name.
    public static let passEntryKeys = ["targets", "ignore", "fit"]
    /// The format version this parser reads.
    public static let formatVersion = 1

    /// The recipe in the file at `path`; throws the first problem.
    public static func parse(contentsOf path: String) throws -> Recipe {
        try parse(readText(path), file: path)
    }

    /// The recipe in `text`, read from `file` (used in errors; relative paths in the recipe resolve
    /// against `baseDirectory`, by default the file's folder); throws the first problem.
    public static func parse(_ text: String, file: String, baseDirectory: String? = nil) throws -> Recipe {
        let (recipe, errors) = parseCollectingErrors(text, file: file, baseDirectory: baseDirectory)
        if let first = errors.first { throw first }
        guard let recipe else { throw RecipeError(SourceLocation(file: file), path: "", "not a recipe") }
        return recipe
    }

    /// The recipe in `text` and every problem found (the recipe is nil when there are problems).
    public static func parseCollectingErrors(_ text: String, file: String, baseDirectory: String? = nil) -> (recipe: Recipe?, errors: [RecipeError]) {
        let (recipe, errors) = parseLeniently(text, file: file, baseDirectory: baseDirectory)
        return (errors.isEmpty ? recipe : nil, errors)
    }

    /// Every problem of `text` and, unless the YAML itself is unreadable or not a mapping, the recipe made of
    /// what could be read: a setting with a problem keeps its default and a pass entry with one is left out.
    /// `RecipeCheck` validates that recipe too, so one report holds every problem.
    public static func parseLeniently(_ text: String, file: String, baseDirectory: String? = nil) -> (recipe: Recipe?, errors: [RecipeError]) {
        let diagnostics = RecipeDiagnostics(file: file)
        let base = baseDirectory ?? RecipePaths.directory(of: file)
        let root: OptionValue?
        do {
            root = try YAMLTree.read(text, file: file)
        } catch let e as RecipeError {
            return (nil, [e])
        } catch {
            return (nil, [RecipeError(diagnostics.fileLocation, path: "", "cannot read YAML: \(error)")])
        }
        guard let root, !root.isNull else {
            return (nil, [RecipeError(SourceLocation(file: file, line: 1, column: 1), path: "",
                                      "the recipe is empty; it needs at least `lancet: 1` and `stages:` (see Docs/Recipes.md)")])
        }
        var reader = RecipeReader(diagnostics: diagnostics, base: base)
        let recipe = reader.recipe(root, text: text)
        return (recipe, diagnostics.sortedErrors)
    }

    /// The text of a recipe file, or a `RecipeError` naming it.
    public static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecipeError(SourceLocation(file: path), path: "", "cannot read the recipe file (missing or unreadable)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(SourceLocation(file: path), path: "", "the recipe file is not UTF-8 text")
        }
        return text
    }
}

/// The walk over a recipe's tree: one method per section, each reporting into `diagnostics`.
struct RecipeReader {
    let diagnostics: RecipeDiagnostics
    /// The folder relative paths resolve against.
    let base: String
    /// Where top-level settings were written.
    var locations: [String: SourceLocation] = [:]

    init(diagnostics: RecipeDiagnostics, base: String) {
        self.diagnostics = diagnostics
        self.base = base
    }

    mutating func recipe(_ root: OptionValue, text: String) -> Recipe? {
        let top = SourceLocation(file: diagnostics.file, line: 1, column: 1)
        guard let fields = diagnostics.mapping(root, path: "", at: top, allowed: RecipeParser.topLevelKeys, what: "a recipe") else { return nil }
        var recipe = Recipe(stages: [], text: text, source: diagnostics.file)
        if let f = fields["lancet"], let v = diagnostics.integer(f, path: "lancet", minimum: Int.min) {
            if v != RecipeParser.formatVersion {
                diagnostics.report(f.valueLocation, "lancet", "unsupported recipe format version \(v); this Lancet reads version \(RecipeParser.formatVersion)")
            }
            recipe.version = v
        }
        if let f = fields["model"] { recipe.model = path(f, key: "model") }
        if let f = fields["calibration"], !f.value.isNull { recipe.calibration = calibration(f) ?? recipe.calibration }
        if let f = fields["stages"] {
            recipe.stages = stages(f)
        } else {
            diagnostics.reportMissing("stages", in: root, at: top, path: "stages", "missing 'stages': a recipe needs at least one stage with at least one pass")
        }
        if let f = fields["evaluate"], !f.value.isNull { recipe.evaluate = evaluate(f) }
        if let f = fields["output"] { recipe.output = path(f, key: "output") }
        recipe.locations = locations
        return recipe
    }

    /// A path setting, resolved against the recipe's folder.
    mutating func path(_ f: RecipeDiagnostics.Field, key: String) -> String? {
        if f.value.isNull { return nil }
        guard let s = diagnostics.string(f, path: key, what: "a path") else { return nil }
        guard !s.isEmpty else {
            diagnostics.report(f.valueLocation, key, "expected a path, got an empty string")
            return nil
        }
        locations[key] = f.valueLocation
        return RecipePaths.resolve(s, against: base)
    }

    mutating func calibration(_ field: RecipeDiagnostics.Field) -> CalibrationSpec? {
        guard let fields = diagnostics.mapping(field.value, path: "calibration", at: field.location,
                                               allowed: RecipeParser.calibrationKeys, what: "calibration") else { return nil }
        var spec = CalibrationSpec()
        if let f = fields["data"] { spec.data = path(f, key: "calibration.data") }
        if let f = fields["samples"], let n = diagnostics.integer(f, path: "calibration.samples", minimum: 1) {
            spec.samples = n
            locations["calibration.samples"] = f.valueLocation
        }
        if let f = fields["context"], let n = diagnostics.integer(f, path: "calibration.context", minimum: 1) {
            spec.context = n
            locations["calibration.context"] = f.valueLocation
        }
        if let f = fields["seed"], let n = diagnostics.unsigned(f, path: "calibration.seed") { spec.seed = n }
        if let f = fields["sampler"], let name = diagnostics.string(f, path: "calibration.sampler", what: "a sampler name") {
            if let sampler = CalibrationSampler(rawValue: name) {
                spec.sampler = sampler
            } else {
                let names = CalibrationSampler.allCases.map(\.rawValue)
                let hint = Suggestion.hint(for: name, in: names)
                diagnostics.report(f.valueLocation, "calibration.sampler", "unknown sampler '\(name)'\(hint); valid samplers: \(names.joined(separator: ", "))")
            }
        }
        return spec
    }

    mutating func evaluate(_ field: RecipeDiagnostics.Field) -> EvaluateSpec? {
        guard let fields = diagnostics.mapping(field.value, path: "evaluate", at: field.location,
                                               allowed: RecipeParser.evaluateKeys, what: "evaluate") else { return nil }
        var spec = EvaluateSpec(data: [])
        if let f = fields["data"] {
            if let files = diagnostics.strings(f, path: "evaluate.data", what: "a file path") {
                if files.isEmpty { diagnostics.report(f.valueLocation, "evaluate.data", "needs at least one evaluation file") }
                for (i, file) in files.enumerated() {
                    let key = files.count == 1 && !isList(f.value) ? "evaluate.data" : "evaluate.data[\(i)]"
                    locations[key] = file.location ?? f.valueLocation
                    spec.data.append(RecipePaths.resolve(file.text, against: base))
                }
            }
        } else {
            diagnostics.reportMissing("data", in: field.value, at: field.location, path: "evaluate.data", "missing 'data': the evaluation text file(s)")
        }
        if let f = fields["context"], let n = diagnostics.integer(f, path: "evaluate.context", minimum: 1) {
            spec.context = n
            locations["evaluate.context"] = f.valueLocation
        }
        if let f = fields["max_windows"], !f.value.isNull, let n = diagnostics.integer(f, path: "evaluate.max_windows", minimum: 1) { spec.maxWindows = n }
        if let f = fields["score_from"], !f.value.isNull, let n = diagnostics.integer(f, path: "evaluate.score_from", minimum: 0) {
            if n < spec.context - 1 {
                spec.scoreFrom = n
            } else {
                diagnostics.report(f.valueLocation, "evaluate.score_from", "must be below context − 1 (\(spec.context - 1)) so that a prediction is scored, got \(n)")
            }
        }
        return spec
    }

    func isList(_ v: OptionValue) -> Bool {
        if case .list = v { return true }
        return false
    }
}
