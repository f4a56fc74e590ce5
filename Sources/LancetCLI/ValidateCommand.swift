import ArgumentParser
import Foundation
import Lancet

/// `lancet validate RECIPE`: every problem of a recipe, before any compute.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a recipe without running it: keys and types, passes and options, targets against the model, files.",
        discussion: "Exits with 0 when the recipe is valid and 64 (bad input) after printing every problem as FILE:LINE:COLUMN KEY: REASON.")

    @Option(help: "Load passes from a plugin library (repeatable; explicit paths only).")
    var plugin: [String] = []

    @Argument(help: "The YAML recipe.")
    var recipe: String

    @Flag(help: "Print the canonical YAML recipe and each stage's textual pipeline.")
    var dump = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let text: String
        do {
            text = try RecipeParser.readText(recipe)
        } catch let e as RecipeError {
            try finish(nil, errors: [e], text: "")
            return
        }
        let (parsed, parseErrors) = RecipeParser.parseCollectingErrors(text, file: recipe)
        guard let parsed else {
            try finish(nil, errors: parseErrors, text: text)
            return
        }
        var model: Model?
        var errors: [RecipeError] = []
        if let path = parsed.model, FileManager.default.fileExists(atPath: path) {
            do { model = try ModelLoader.load(path) } catch {
                errors.append(RecipeError(parsed.location(of: "model"), path: "model", "cannot load the model: \(error)"))
            }
        }
        errors += RecipeValidator.validate(parsed, registry: try CommandSupport.registry(plugins: plugin), model: model)
        // Beyond the recipe checks of the output: can a file (or its missing folders) really be made there?
        if let output = parsed.output, !errors.contains(where: { $0.path == "output" }), let problem = OutputFolder.problem(writing: output) {
            errors.append(RecipeError(parsed.location(of: "output"), path: "output", problem))
        }
        try finish(parsed, model: model, errors: errors, text: text)
    }

    /// Prints the outcome and exits with 64 when there are errors.
    func finish(_ recipe: Recipe?, model: Model? = nil, errors: [RecipeError], text: String) throws {
        if json {
            let report = ValidationReport(ok: errors.isEmpty, recipe: self.recipe, errors: errors.map(ValidationReport.Problem.init),
                                          yaml: dump ? recipe.map(RecipePrinter.yaml) : nil,
                                          pipelines: dump ? recipe?.stages.map { PipelineText.render($0.passes) } : nil)
            print(try JSONOutput.string(report))
        } else {
            if dump, let recipe {
                print(RecipePrinter.yaml(recipe))
                for stage in recipe.stages { print("# \(stage.name): \(PipelineText.render(stage.passes))") }
                print()
            }
            if errors.isEmpty, let recipe {
                print("ok: \(self.recipe)")
                print(summary(recipe, model: model))
            }
            for e in errors {
                FileHandle.standardError.write(Data((e.description + "\n").utf8))
                if e.location.file == self.recipe, let caret = e.caret(in: text) {
                    FileHandle.standardError.write(Data((caret.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\n").utf8))
                }
            }
        }
        if !errors.isEmpty { throw ExitCode.validationFailure }
    }

    /// A few lines on what the recipe will do.
    func summary(_ r: Recipe, model: Model?) -> String {
        var lines: [String] = []
        if let m = r.model { lines.append("  model: \(m)" + (model.map { " (\($0.blocks.count) blocks)" } ?? "")) }
        if let d = r.calibration.data {
            lines.append("  calibration: \(r.calibration.samples) × \(r.calibration.context) tokens from \(d), seed \(r.calibration.seed)")
        } else {
            lines.append("  calibration: none")
        }
        for s in r.stages { lines.append("  stage \(s.name): \(PipelineText.render(s.passes))") }
        if let e = r.evaluate {
            lines.append("  evaluate: \(e.data.joined(separator: ", ")), context \(e.context)" + (e.maxWindows.map { ", at most \($0) windows" } ?? ""))
        }
        if let o = r.output { lines.append("  output: \(o)") }
        return lines.joined(separator: "\n")
    }
}

/// The `--json` output of `lancet validate`.
struct ValidationReport: Encodable {
    struct Problem: Encodable {
        var file: String
        var line: Int
        var column: Int
        var path: String
        var reason: String
        var message: String

        init(_ e: RecipeError) {
            file = e.location.file
            line = e.location.line
            column = e.location.column
            path = e.path
            reason = e.reason
            message = e.description
        }
    }

    var ok: Bool
    var recipe: String
    var errors: [Problem]
    var yaml: String?
    var pipelines: [String]?
}
