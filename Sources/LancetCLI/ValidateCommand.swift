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

    func validate() throws {
        for p in plugin { try InputPath.require(p, "--plugin") }
    }

    func run() throws {
        let check = RecipeCheck(path: recipe, registry: try CommandSupport.registry(plugins: plugin))
        try finish(check.recipe, model: check.model, errors: check.errors, text: check.recipe?.text ?? (try? RecipeParser.readText(recipe)) ?? "")
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
            if !errors.isEmpty { Console.error(CommandSupport.describe(errors, text: text, source: self.recipe)) }
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
            lines.append("  evaluate: \(e.data.joined(separator: ", ")), context \(e.context)" + (e.maxWindows.map { ", at most \($0) windows" } ?? "")
                         + (e.scoreFrom.map { ", scored from position \($0)" } ?? ""))
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
