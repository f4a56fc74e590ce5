import Foundation
import LancetData
import LancetIR

/// The recipe's counts against what exists, so that a run never starts an allocation it cannot finish:
///
/// - `calibration.samples` against the windows the calibration data can give. The sampler draws each
///   window at one of `tokens − context` start offsets, so that is how many distinct windows exist. Here,
///   before tokenising, the text's UTF-8 bytes bound its tokens (every token of Lancet's byte-level and
///   SentencePiece BPE tokenizers covers at least one byte; a SentencePiece prefix adds one), and
///   `CalibrationSet` checks the exact number after tokenising, before it allocates a window.
/// - `calibration.context` and `evaluate.context` against the model's context length.
/// - The calibration activations against memory: the block sweep holds two tensors of
///   `samples × context × hidden` floats at once.
extension RecipeValidator {
    /// The problems of the recipe's counts. `model` enables the context and memory checks, `checkFiles`
    /// the check against the calibration data.
    static func checkCounts(_ recipe: Recipe, model: Model?, checkFiles: Bool, memoryBytes: UInt64) -> [RecipeError] {
        var errors: [RecipeError] = []
        let spec = recipe.calibration
        let calibrated = spec.data != nil && spec.samples >= 1 && spec.context >= 1
        if let model {
            let limit = model.config.contextLength
            /// The problem of a context setting at `path` (written or the default, then located at `near`).
            func contextProblem(_ context: Int, path: String, near: String) {
                let written = recipe.locations[path] != nil
                let at = recipe.locations[path] ?? recipe.locations[near] ?? recipe.location(of: near + "[0]")
                errors.append(RecipeError(at, path: path,
                                          "\(context) tokens per window requested\(written ? "" : " (the default)"), the model's context length is \(limit)"))
            }
            if calibrated, spec.context > limit { contextProblem(spec.context, path: "calibration.context", near: "calibration.data") }
            if let evaluate = recipe.evaluate, evaluate.context > limit { contextProblem(evaluate.context, path: "evaluate.context", near: "evaluate.data") }
            if calibrated, let problem = activationProblem(samples: spec.samples, context: spec.context, hidden: model.config.hiddenSize, memoryBytes: memoryBytes) {
                errors.append(RecipeError(recipe.location(of: "calibration.samples"), path: "calibration.samples", problem))
            }
        }
        if checkFiles, calibrated, let data = spec.data, let problem = windowProblem(spec, data: data) {
            errors.append(RecipeError(recipe.location(of: problem.path), path: problem.path, problem.reason))
        }
        return errors
    }

    /// Why the calibration data at `data` cannot give `spec.samples` windows of `spec.context` tokens, or
    /// nil when it may (or when the file is missing or a folder, which `checkPaths` reports).
    static func windowProblem(_ spec: CalibrationSpec, data: String) -> (path: String, reason: String)? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        let corpus: TextCorpus
        do { corpus = try TextCorpus(path: data) } catch { return ("calibration.data", "\(error)") }
        let bytes = corpus.documents.reduce(0) { $0 + $1.utf8.count } + 2 * max(0, corpus.documents.count - 1)
        let maxTokens = bytes + 1
        let available = max(0, maxTokens - spec.context)
        guard spec.samples > available else { return nil }
        return ("calibration.samples", "\(spec.samples) windows of \(spec.context) tokens requested, the data gives at most \(available) "
                + "(its \(bytes) bytes of text hold at most \(maxTokens) tokens, one window per start offset)")
    }

    /// Why `samples` windows of `context` tokens cannot be held in `memoryBytes` as the block sweep's two
    /// activation tensors of `hidden` floats per token, or nil when they can.
    static func activationProblem(samples: Int, context: Int, hidden: Int, memoryBytes: UInt64) -> String? {
        let (tokens, o1) = samples.multipliedReportingOverflow(by: context)
        let (floats, o2) = tokens.multipliedReportingOverflow(by: hidden)
        let (bytes, o3) = floats.multipliedReportingOverflow(by: 2 * MemoryLayout<Float>.size)
        guard o1 || o2 || o3 || UInt64(bytes) > memoryBytes else { return nil }
        func gib(_ b: Double) -> String { String(format: "%.1f GiB", b / 1_073_741_824) }
        let need = o1 || o2 || o3 ? "more than \(gib(Double(Int.max)))" : gib(Double(bytes))
        return "\(samples) windows of \(context) tokens need two activation tensors of \(samples) × \(context) × \(hidden) floats (\(need)), "
            + "more than this machine's \(gib(Double(memoryBytes))) of memory"
    }
}
