import Foundation
import LancetIO
import LancetIR

/// Checks a recipe before any compute and reports every problem, not just the first: the passes exist
/// and accept their options, every target pattern matches something in the model, each pass's own
/// static checks hold, fitting settings are in range, calibrated passes have calibration data, the counts
/// fit what exists (windows in the data, the model's context, memory; `RecipeValidator+Counts.swift`),
/// the input files exist, and the output can be written and can hold the result (`RecipeValidator+Export.swift`).
///
/// ```swift
/// let recipe = try RecipeParser.parse(contentsOf: "recipe.yaml")
/// let model = try ModelLoader.load(recipe.model!)
/// for error in RecipeValidator.validate(recipe, registry: try BuiltinPasses.registry(), model: model) { print(error) }
/// ```
public enum RecipeValidator {
    /// The problems of `recipe`, in recipe order. Without `model`, the checks that need it (target
    /// patterns, the passes' `validate(model:targets:)`) are skipped; with `checkFiles` false, so are the
    /// file-system checks (for recipes read on another machine). Calibration activations are checked
    /// against this machine's physical memory.
    public static func validate(_ recipe: Recipe, registry: PassRegistry, model: Model?, checkFiles: Bool = true) -> [RecipeError] {
        validate(recipe, registry: registry, model: model, checkFiles: checkFiles, memoryBytes: ProcessInfo.processInfo.physicalMemory)
    }

    /// The problems of `recipe`, with calibration activations checked against `memoryBytes`, the memory
    /// the run may use.
    public static func validate(_ recipe: Recipe, registry: PassRegistry, model: Model?, checkFiles: Bool, memoryBytes: UInt64) -> [RecipeError] {
        var errors: [RecipeError] = []
        let file = SourceLocation(file: recipe.source)
        if recipe.version != RecipeParser.formatVersion {
            errors.append(RecipeError(recipe.location(of: "lancet"), path: "lancet", "unsupported recipe format version \(recipe.version); this Lancet reads version \(RecipeParser.formatVersion)"))
        }
        if recipe.calibration.samples < 1 { errors.append(RecipeError(file, path: "calibration.samples", "must be positive, got \(recipe.calibration.samples)")) }
        if recipe.calibration.context < 1 { errors.append(RecipeError(file, path: "calibration.context", "must be positive, got \(recipe.calibration.context)")) }
        if recipe.stages.isEmpty { errors.append(RecipeError(file, path: "stages", "needs at least one stage with at least one pass")) }
        for (i, stage) in recipe.stages.enumerated() {
            if stage.passes.isEmpty { errors.append(RecipeError(file, path: "stages[\(i)].passes", "stage '\(stage.name)' has no passes")) }
            for pass in stage.passes { errors += check(pass, recipe: recipe, registry: registry, model: model) }
        }
        if checkFiles { errors += checkPaths(recipe) }
        errors += checkCounts(recipe, model: model, checkFiles: checkFiles, memoryBytes: memoryBytes)
        errors += checkExport(recipe, registry: registry, model: model)
        return errors
    }

    /// The problems of one pass invocation.
    static func check(_ invocation: PassInvocation, recipe: Recipe, registry: PassRegistry, model: Model?) -> [RecipeError] {
        var errors: [RecipeError] = []
        let at = invocation.location, path = invocation.path
        for p in invocation.fit.problems { errors.append(RecipeError(at, path: joinPath(path, "fit.\(p.key)"), p.reason)) }
        let calibrated = recipe.calibration.data != nil
        // A pipeline given to `lancet apply -p` takes its data from --calibration, a recipe from its `calibration:` key.
        let noData = recipe.source == "<pipeline>" ? "no --calibration FILE was given" : "the recipe has no `calibration: {data: FILE}`"
        if !calibrated, invocation.fit.method != .none {
            errors.append(RecipeError(at, path: joinPath(path, "fit"), "fit method '\(invocation.fit.method.rawValue)' fits on calibration data, but \(noData)"))
        }
        var pass: AnyPass?
        do {
            pass = try registry.instantiate(invocation)
        } catch let e as RecipeError {
            errors.append(e)
        } catch {
            errors.append(RecipeError(at, path: path, "pass '\(invocation.name)': \(error)"))
        }
        if !calibrated, registry.descriptor(invocation.name)?.needsCalibration == true {
            errors.append(RecipeError(at, path: path, "pass '\(invocation.name)' needs calibration data, but \(noData)"))
        }
        if let d = registry.descriptor(invocation.name) {
            if !d.fitsLocally, invocation.fit != FitSpec() {
                errors.append(RecipeError(at, path: joinPath(path, "fit"), "model pass '\(d.name)' does no local fitting, so `fit` would be ignored; remove it"))
            }
            if !d.readsTargets, invocation.selection != .all {
                let key = invocation.selection.targets.isEmpty ? "ignore" : "targets"
                errors.append(RecipeError(at, path: joinPath(path, key), "model pass '\(d.name)' does not read `targets`/`ignore`, so they would be ignored; remove them"))
            }
        }
        guard let model else { return errors }
        let unmatched = Set(invocation.selection.unmatchedPatterns(in: model))
        for (key, patterns) in [("targets", invocation.selection.targets), ("ignore", invocation.selection.ignore)] {
            for (i, p) in patterns.enumerated() where unmatched.contains(p) {
                errors.append(RecipeError(at, path: joinPath(path, "\(key)[\(i)]"),
                                          "pattern '\(p)' matches nothing in the model (blocks.0 … blocks.\(model.blocks.count - 1), e.g. 'blocks.*.mlp.*')"))
            }
        }
        // A pattern that matches nothing selects nothing; the pass's own checks still run on what the others select.
        guard let pass else { return errors }
        do {
            try pass.validate(model: model, targets: invocation.selection)
        } catch let e as PassOptionError {
            errors.append(RecipeError(invocation.options.location(ofKey: e.option) ?? at, path: joinPath(path, "\(invocation.name).\(e.option)"), e.reason))
        } catch let e as RecipeError {
            errors.append(e)
        } catch {
            errors.append(RecipeError(at, path: path, "pass '\(invocation.name)' cannot run on this model: \(error)"))
        }
        return errors
    }

    /// What a missing or unloadable model costs the report, said once, on the model's error.
    public static let modelChecksSkipped = " (so the checks against the model did not run: target patterns, the passes' own checks, "
        + "context lengths, activation memory, the output format's limits)"

    /// The problems with the recipe's files: inputs exist, calibration is not an evaluation file, and the
    /// output is a `.gguf` file or a folder whose parent exists or can be created.
    static func checkPaths(_ recipe: Recipe) -> [RecipeError] {
        var errors: [RecipeError] = []
        let fm = FileManager.default
        func exists(_ path: String, folder: inout Bool) -> Bool {
            var isDirectory: ObjCBool = false
            defer { folder = isDirectory.boolValue }
            return fm.fileExists(atPath: path, isDirectory: &isDirectory)
        }
        var folder = false
        if let model = recipe.model, !exists(model, folder: &folder) {
            errors.append(RecipeError(recipe.location(of: "model"), path: "model", "file not found: \(model)\(modelChecksSkipped)"))
        }
        if let data = recipe.calibration.data {
            if !exists(data, folder: &folder) {
                errors.append(RecipeError(recipe.location(of: "calibration.data"), path: "calibration.data", "file not found: \(data)"))
            } else if folder {
                errors.append(RecipeError(recipe.location(of: "calibration.data"), path: "calibration.data", "is a folder, not a text or JSON-lines file: \(data)"))
            }
        }
        for (i, data) in (recipe.evaluate?.data ?? []).enumerated() {
            let key = "evaluate.data[\(i)]"
            let location = recipe.locations[key] ?? recipe.location(of: "evaluate.data")
            if !exists(data, folder: &folder) {
                errors.append(RecipeError(location, path: key, "file not found: \(data)"))
            } else if folder {
                errors.append(RecipeError(location, path: key, "is a folder, not a text file: \(data)"))
            }
            if data == recipe.calibration.data {
                errors.append(RecipeError(location, path: key, "is also the calibration data; never calibrate on an evaluation file"))
            }
        }
        if let output = recipe.output { errors += checkOutput(output, recipe: recipe) }
        return errors
    }

    /// The output is a `.gguf` file, an archive (`.lancet`, `.safetensors`) or a folder, is not the input model, and its parent folder exists or can be
    /// created (the nearest existing ancestor is a writable folder).
    static func checkOutput(_ output: String, recipe: Recipe) -> [RecipeError] {
        let at = recipe.location(of: "output")
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let isFile = ModelOutputFormat(path: output).isFile
        if !isFile && !RecipePaths.isFolder(output) {
            return [RecipeError(at, path: "output", "must be a .gguf file, a .lancet or .safetensors archive or a folder (for safetensors + config.json), got '\((output as NSString).lastPathComponent)'")]
        }
        if let model = recipe.model, RecipePaths.normalize(model) == RecipePaths.normalize(output) {
            return [RecipeError(at, path: "output", "is the input model; write the result to another path")]
        }
        if isFile, fm.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
            return [RecipeError(at, path: "output", "is an existing folder, not a file: \(output)")]
        }
        var ancestor = (RecipePaths.normalize(output) as NSString).deletingLastPathComponent
        while !ancestor.isEmpty, !fm.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
            ancestor = (ancestor as NSString).deletingLastPathComponent
        }
        if ancestor.isEmpty { ancestor = fm.currentDirectoryPath }
        guard fm.fileExists(atPath: ancestor, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [RecipeError(at, path: "output", "cannot create the output's folder: '\(ancestor)' is a file")]
        }
        guard fm.isWritableFile(atPath: ancestor) else {
            return [RecipeError(at, path: "output", "cannot write the output: folder '\(ancestor)' is not writable")]
        }
        return []
    }
}
