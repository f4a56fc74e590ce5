import ArgumentParser
import Foundation
import Lancet

/// What `run` and `apply` share: the pass registry with plugins, validation, execution and the printed summary.
enum CommandSupport {
    /// Built-in passes plus those of `plugins`.
    static func registry(plugins: [String]) throws -> PassRegistry {
        let registry = try BuiltinPasses.registry()
        for path in plugins { _ = try PluginLoader.load(path: path, into: registry) }
        return registry
    }

    /// Parses a recipe file; a recipe with problems is a validation failure (exit 64) listing every problem
    /// `lancet validate` would (`RecipeCheck`).
    static func parseRecipe(_ path: String, registry: PassRegistry) throws -> Recipe {
        do { return try RecipeParser.parse(contentsOf: path) } catch let e as RecipeError {
            let check = RecipeCheck(path: path, registry: registry)
            let errors = check.errors.isEmpty ? [e] : check.errors
            throw ValidationError(describe(errors, text: check.recipe?.text ?? "", source: path))
        }
    }

    /// Every problem `RecipeValidator` finds, with the recipe's model loaded for the model-dependent checks. The
    /// model is released on return: the run loads its own, and holding this one would double the run's memory.
    static func validationErrors(_ recipe: Recipe, registry: PassRegistry) -> [RecipeError] {
        let model = recipe.model.flatMap { FileManager.default.fileExists(atPath: $0) ? try? ModelLoader.load($0) : nil }
        return RecipeValidator.validate(recipe, registry: registry, model: model)
    }

    /// The GGUF file type `--output-type` names (llama-quantize's names, any case).
    static func ggufOutputType(_ name: String) throws -> GGUFFileType {
        do { return try GGUFFileType(parsing: name) } catch { throw ValidationError("--output-type: \(error)") }
    }

    /// `--output-type`'s help: the accepted names.
    static let outputTypeHelp = ArgumentHelp("GGUF output type: F32 (default, exact), F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                                             + "Q4_K_S, Q4_K_M (Q4_K), Q5_K_S, Q5_K_M (Q5_K) or Q6_K, as llama-quantize makes them.")

    /// Every problem as one message: each error on its line, followed, when it lies in `text` (the recipe or the
    /// pipeline it came from), by that line with a caret under the column, indented.
    static func describe(_ errors: [RecipeError], text: String, source: String) -> String {
        errors.map { e in
            guard e.location.file == source, let caret = e.caret(in: text) else { return e.description }
            return e.description + "\n" + caret.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// How `run` and `apply` print: the per-block table and the summary as text on standard output, or, with
    /// `json`, the table on standard error and the outcome as one JSON object on standard output.
    struct Printing {
        /// Print the outcome as JSON.
        var json = false
        /// Also write the outcome as JSON to this file.
        var reportPath: String?

        /// A table line: standard output, or standard error (unless quiet) with `json`.
        func table(_ line: String) { if json { Console.progress(line + "\n") } else { print(line) } }
    }

    /// Validates, runs, prints the per-block table and the summary.
    static func execute(_ recipe: Recipe, registry: PassRegistry, resume: Bool, force: Bool, evaluate: Bool, evaluateBefore: Bool = true, outputType: String,
                        printing: Printing, measureForward: Bool) throws {
        let type = try ggufOutputType(outputType)
        let log: @Sendable (String) -> Void = { line in Console.log(line) }
        // The cheap checks of the output, and its lock, before anything heavy (validation loads the model).
        var lock: OutputLock?
        if let output = recipe.output {
            if !force, !resume, FileManager.default.fileExists(atPath: output) {
                throw ValidationError("\(output): already exists (use --force to overwrite)")
            }
            if let problem = OutputFolder.problem(writing: output) { throw ValidationError("output \(output): \(problem)") }
            do { lock = try OutputLock.acquire(output: output, log: log) } catch let e as OutputLockError { throw ValidationError("\(e)") }
        }
        defer { lock?.release() }
        let errors = validationErrors(recipe, registry: registry)
        if !errors.isEmpty { throw ValidationError(describe(errors, text: recipe.text, source: recipe.source)) }
        var run = SurgeryRun(recipe: recipe, registry: registry)
        run.outputLock = lock
        run.force = force || resume
        run.evaluate = evaluate
        run.evaluateBefore = evaluateBefore
        run.outputType = type
        run.measureCalibrationForward = measureForward
        let bar = ProgressBar("surgery")
        var options = RunOptions()
        options.log = log
        options.progress = { done, total, note in bar.update(done, of: total, note: note) }
        options.blockFinished = { index, reports, seconds in
            for r in reports { printing.table(BlockTable.row(r, seconds: seconds)) }
        }
        options.modelPassFinished = { r, seconds in
            printing.table(BlockTable.row(r, seconds: seconds))
            for line in BlockTable.details(r) { printing.table(line) }
        }
        printing.table(BlockTable.header)
        try IOFailure.inWords {
            let outcome = try run.execute(options: options, resume: resume)
            if printing.json { print(try JSONOutput.string(outcome)) } else { print(Summary.render(outcome)) }
            if let reportPath = printing.reportPath {
                try AtomicFile.write(to: reportPath) { try $0.write(Array(try JSONOutput.string(outcome).utf8)) }
            }
        }
    }
}

/// A file-system failure reported in words ("cannot write /x/y: permission denied") where Foundation would
/// print an `NSCocoaErrorDomain` dump.
struct IOFailure: Error, CustomStringConvertible {
    let description: String

    /// Runs `body`, turning Foundation's file errors into `IOFailure`s and passing every other error through.
    static func inWords<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            if let words = IOErrorText.describe(error) { throw IOFailure(description: words) }
            throw error
        }
    }
}

/// The per-block table printed as a run goes.
enum BlockTable {
    /// `cut s` and `fit s` are the pass's cut and its fit; `fwd s` the sweep computing the next block's inputs (one
    /// forward of the finished block over the calibration windows, or less when an lstsq fit kept the values its
    /// output follows from); `block s` the whole block, whose remainder is the dense block's statistics sweep (about
    /// one forward and the Grams).
    static let header = "block  pass               metric                  err(cut)     err(fit)  fit       cut s   fit s   fwd s  block s"

    static func row(_ r: PassReport, seconds: Double) -> String {
        // The sparsity, else the first metric that is not one of a family (`bi.3`); a model pass lists them all below.
        let metric = r.metrics["sparsity"].map { String(format: "sparsity %5.1f%%", $0 * 100) }
            ?? r.metrics.sorted { $0.key < $1.key }.first { !$0.key.contains(".") }.map { "\($0.key) \(String(format: "%g", $0.value))" } ?? ""
        func e(_ v: Double?) -> String { v.map { String(format: "%10.3e", $0) } ?? "         -" }
        let block = r.block.map { String($0) } ?? "model"
        func s(_ v: Double?) -> String { v.map { String(format: "%6.1f", $0) } ?? "     -" }
        return String(format: "%5@  %-17@  %-22@ %@   %@  %-7@ %@  %@  %@  %6.1f", block as NSString, r.pass as NSString, metric as NSString,
                      e(r.errorAfterCut), e(r.errorAfterFit), (r.fit ?? "-") as NSString, s(r.cutSeconds), s(r.fitSeconds),
                      s(r.forwardSeconds), seconds)
    }

    /// A model pass's notes and its metrics, one indented line each; a family of metrics (`bi.0`, `bi.1`, …) is one
    /// line in index order (a block pass's row says enough).
    static func details(_ r: PassReport) -> [String] {
        var families: [String: [(Int, Double)]] = [:]
        var single: [(String, Double)] = []
        for (key, value) in r.metrics {
            let parts = key.split(separator: ".", maxSplits: 1)
            if parts.count == 2, let i = Int(parts[1]) { families[String(parts[0]), default: []].append((i, value)) } else { single.append((key, value)) }
        }
        let number = { (v: Double) in String(format: "%.4g", v) }
        var lines = r.notes.map { "       \($0)" }
        lines += single.sorted { $0.0 < $1.0 }.map { "       \($0.0) = \(number($0.1))" }
        for (name, entries) in families.sorted(by: { $0.key < $1.key }) {
            let sorted = entries.sorted { $0.0 < $1.0 }
            lines.append("       \(name).\(sorted.first!.0)…\(sorted.last!.0) = " + sorted.map { number($0.1) }.joined(separator: " "))
        }
        return lines
    }
}

/// The before/after summary.
enum Summary {
    static func render(_ o: SurgeryRun.Outcome) -> String {
        var lines = ["", "summary"]
        func mb(_ b: Int?) -> String { b.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-" }
        if let b = o.before, let a = o.after {
            lines.append(String(format: "  parameters         %d → %d stored, %d → %d non-zero", b.parameters, a.parameters, b.nonzeroParameters, a.nonzeroParameters))
            if let sb = b.prefillTokensPerSecond, let sa = a.prefillTokensPerSecond {
                lines.append(String(format: "  prefill (%d tok)   %.0f → %.0f tokens/s (×%.2f)", b.prefillTokens ?? 0, sb, sa, sa / sb))
            }
            for file in b.perplexity.keys.sorted() {
                guard let pb = b.perplexity[file], let pa = a.perplexity[file] else { continue }
                lines.append(String(format: "  perplexity         %.3f → %.3f  (%@, %d windows, %d tokens)", pb.perplexity, pa.perplexity,
                                    (file as NSString).lastPathComponent as NSString, pa.windows, pa.tokens))
            }
        }
        if o.before == nil, let a = o.after {
            lines.append(String(format: "  parameters         %d stored, %d non-zero (after)", a.parameters, a.nonzeroParameters))
            if let sa = a.prefillTokensPerSecond { lines.append(String(format: "  prefill (%d tok)   %.0f tokens/s (after)", a.prefillTokens ?? 0, sa)) }
            for file in a.perplexity.keys.sorted() {
                let pa = a.perplexity[file]!
                lines.append(String(format: "  perplexity         %.3f after  (%@, %d windows, %d tokens)", pa.perplexity,
                                    (file as NSString).lastPathComponent as NSString, pa.windows, pa.tokens))
            }
        }
        for r in o.report.passes where r.block == nil {
            var notes = r.notes
            if let before = r.errorAfterCut, let after = r.errorAfterFit {
                notes.append(String(format: "error %.3e before fitting, %.3e after (%@)", before, after, (r.fit ?? "-") as NSString))
            }
            lines.append("  model pass         \(r.pass)")
            lines += notes.map { "                       \($0)" }
        }
        lines.append("  file size          \(mb(o.inputBytes)) → \(mb(o.outputBytes))" + (o.output.map { "  (\($0))" } ?? ""))
        if let kept = o.outputZeroRetention { lines.append("  zeros in output    \(kept.summary)") }
        lines.append(String(format: "  surgery time       %.1f s", o.report.seconds))
        if let peak = o.peakResidentBytes { lines.append(String(format: "  peak memory        %.2f GiB", Double(peak) / 1_073_741_824)) }
        return lines.joined(separator: "\n")
    }
}

extension WeightPrecision: ExpressibleByArgument {
    /// The `--weights` help shared by `eval`, `generate` and `bench`.
    static let help: ArgumentHelp = "Multiply by the Float weights (f32, exact, the default) or by 16-bit weights (f16, bf16): half the bytes per decoded token. Float weights are rounded once at load; an F16 or BF16 file's weights in the same format are used as stored, never widened to Float."
}
