import ArgumentParser
import Foundation
import Lancet

/// `lancet run RECIPE`: validates, then runs a recipe and prints a per-block table and a before/after summary.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a surgery recipe (YAML).")

    @Argument(help: "The recipe file.")
    var recipe: String

    @Flag(help: "Continue an interrupted run from its last finished block.")
    var resume = false

    @Flag(help: "Overwrite an existing output.")
    var force = false

    @Option(help: "Load passes from a plugin library (repeatable; explicit paths only).")
    var plugin: [String] = []

    @Flag(help: "Skip the before/after evaluation.")
    var noEval = false

    @Flag(help: "Evaluate only after surgery (the dense numbers are known).")
    var skipEvalBefore = false

    @Option(help: CommandSupport.outputTypeHelp)
    var outputType = "F32"

    @Option(help: "Also write the run's report (with timings) as JSON to this file.")
    var report: String?

    @Flag(help: "Also time one forward pass of the calibration windows through the blocks (for speed ratios).")
    var measureForward = false

    @Flag(help: "Print the run's outcome (the --report object) as one JSON object on standard output; the per-block table goes to standard error.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(recipe, "RECIPE")
        for p in plugin { try InputPath.require(p, "--plugin") }
    }

    func run() throws {
        quiet.apply()
        let registry = try CommandSupport.registry(plugins: plugin)
        let parsed = try CommandSupport.parseRecipe(recipe, registry: registry)
        try CommandSupport.execute(parsed, registry: registry, resume: resume, force: force, evaluate: !noEval, evaluateBefore: !skipEvalBefore, outputType: outputType,
                                   printing: .init(json: json, reportPath: report), measureForward: measureForward)
    }
}

/// `lancet apply MODEL -p PIPELINE -o OUT`: runs a one-line pipeline, for chaining in scripts.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply a textual pipeline such as 'magnitude(sparsity=0.5) | wanda(pattern=2:4)' to a model.")

    @Argument(help: "The input model (GGUF file or Hugging Face folder); outputs of earlier commands chain.")
    var model: String

    @Option(name: .shortAndLong, help: "The pipeline: pass(key=value, …) | pass(…).")
    var pipeline: String

    @Option(name: .shortAndLong, help: "The output: a .gguf file, or a folder for safetensors + config.json.")
    var output: String

    @Option(help: "Calibration data (text or JSON lines with 'text', gzip allowed).")
    var calibration: String?

    @Option(help: "Calibration windows.")
    var samples = 128

    @Option(help: "Tokens per calibration window.")
    var context = 2048

    @Option(help: "Calibration sampling seed.")
    var seed: UInt64 = 0

    @Option(help: "Calibration window sampler: lancet, or python (Python's random.seed(seed) and randint, as the papers' code draws).")
    var sampler = "lancet"

    @Option(help: "Local fitting for every pass that does not set its own: none, lstsq or regional.")
    var fit: String?

    @Option(help: "Evaluate perplexity before and after on this text (first --eval-windows windows).")
    var eval: String?

    @Option(help: "Windows to evaluate.")
    var evalWindows = 4

    @Option(help: "Tokens per evaluation window.")
    var evalContext = 2048

    @Flag(help: "Overwrite an existing output.")
    var force = false

    @Flag(help: "Continue an interrupted run.")
    var resume = false

    @Option(help: "Load passes from a plugin library (repeatable).")
    var plugin: [String] = []

    @Option(help: CommandSupport.outputTypeHelp)
    var outputType = "F32"

    @Flag(help: "Print the run's outcome as one JSON object on standard output; the per-block table goes to standard error.")
    var json = false

    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try InputPath.require(model, "MODEL", kind: .model)
        if let calibration { try InputPath.require(calibration, "--calibration") }
        if let eval { try InputPath.require(eval, "--eval") }
        for p in plugin { try InputPath.require(p, "--plugin") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard context >= 2 else { throw ValidationError("--context must be at least 2") }
        guard evalContext >= 2 else { throw ValidationError("--eval-context must be at least 2") }
        guard evalWindows >= 1 else { throw ValidationError("--eval-windows must be at least 1") }
        guard CalibrationSampler(rawValue: sampler) != nil else {
            throw ValidationError("--sampler must be one of \(CalibrationSampler.allCases.map(\.rawValue).joined(separator: ", ")), got '\(sampler)'")
        }
        if let fit, FitSpec.Method(rawValue: fit) == nil {
            throw ValidationError("--fit must be one of \(FitSpec.Method.allCases.map(\.rawValue).joined(separator: ", ")), got '\(fit)'")
        }
    }

    func run() throws {
        quiet.apply()
        let registry = try CommandSupport.registry(plugins: plugin)
        var passes: [PassInvocation]
        do { passes = try PipelineText.parse(pipeline) } catch let e as RecipeError {
            throw ValidationError(CommandSupport.describe([e], text: pipeline, source: "<pipeline>"))
        }
        if let fit, let method = FitSpec.Method(rawValue: fit) {
            for i in passes.indices where passes[i].fit.method == .none { passes[i].fit.method = method }
        }
        let recipe = Recipe(model: model, calibration: CalibrationSpec(data: calibration, samples: samples, context: context, seed: seed,
                                                                            sampler: CalibrationSampler(rawValue: sampler) ?? .lancet),
                            stages: [Stage(name: "apply", passes: passes)],
                            evaluate: eval.map { EvaluateSpec(data: [$0], context: evalContext, maxWindows: evalWindows) },
                            output: output, text: pipeline, source: "<pipeline>")
        try CommandSupport.execute(recipe, registry: registry, resume: resume, force: force, evaluate: eval != nil, outputType: outputType,
                                   printing: .init(json: json), measureForward: false)
    }
}
