import Foundation
import LancetIO
import LancetIR

/// Every problem of a recipe file in one report, as `lancet validate` prints it: the recipe's shape
/// (`RecipeParser`), then, on what could be read, the passes, options, targets, files, counts and output
/// (`RecipeValidator`) against the model, and whether the output's folder can really be made. A check that
/// depends on a part with a problem is not made (a count whose setting has a type error, the model checks
/// without a model, which the model's error says once), so each problem is reported once.
public struct RecipeCheck {
    /// The recipe as read (settings with problems at their defaults), or nil when its text is not a recipe.
    public let recipe: Recipe?
    /// The recipe's model, when it loaded.
    public let model: Model?
    /// Every problem, the shape's first (in source order), then the validator's.
    public let errors: [RecipeError]

    /// Checks the recipe file at `path` with the passes of `registry`.
    public init(path: String, registry: PassRegistry) {
        let text: String
        do { text = try RecipeParser.readText(path) } catch {
            self.init(recipe: nil, model: nil, errors: [error as? RecipeError ?? RecipeError(SourceLocation(file: path), path: "", "\(error)")])
            return
        }
        self.init(text: text, file: path, registry: registry)
    }

    /// Checks the recipe `text`, read from `file`.
    public init(text: String, file: String, registry: PassRegistry) {
        let (parsed, parseErrors) = RecipeParser.parseLeniently(text, file: file)
        guard let parsed else {
            self.init(recipe: nil, model: nil, errors: parseErrors)
            return
        }
        var model: Model?
        var errors: [RecipeError] = []
        if let path = parsed.model, FileManager.default.fileExists(atPath: path) {
            do { model = try ModelLoader.load(path) } catch {
                errors.append(RecipeError(parsed.location(of: "model"), path: "model", "cannot load the model: \(error)\(RecipeValidator.modelChecksSkipped)"))
            }
        }
        errors += RecipeValidator.validate(parsed, registry: registry, model: model)
        // Beyond the recipe checks of the output: can a file (or its missing folders) really be made there?
        if let output = parsed.output, !errors.contains(where: { $0.path == "output" }), let problem = OutputFolder.problem(writing: output) {
            errors.append(RecipeError(parsed.location(of: "output"), path: "output", problem))
        }
        self.init(recipe: parsed, model: model, errors: parseErrors + errors.filter { e in !parseErrors.contains { Self.related($0.path, e.path) } })
    }

    private init(recipe: Recipe?, model: Model?, errors: [RecipeError]) {
        self.recipe = recipe
        self.model = model
        self.errors = errors
    }

    /// Whether the validator's problem at `path` lies at or inside the setting of a shape problem at `parsed`
    /// (`calibration.samples` inside `calibration`): it then comes from the default that stood in for the bad setting.
    static func related(_ parsed: String, _ path: String) -> Bool {
        guard !parsed.isEmpty else { return false }
        return path == parsed || path.hasPrefix(parsed + ".") || path.hasPrefix(parsed + "[")
    }
}
