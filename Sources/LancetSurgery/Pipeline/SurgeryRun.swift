import Foundation
import LancetData
import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// A whole recipe run as `lancet run` and `lancet apply` do it: load the model, draw calibration windows,
/// measure before, run the pipeline, measure after, and write the output with its provenance.
public struct SurgeryRun {
    /// Size, speed and quality of a model.
    public struct Measurement: Codable, Sendable {
        /// Parameters stored.
        public var parameters: Int
        /// Parameters of the blocks that survive their masks plus the others.
        public var nonzeroParameters: Int
        /// Prefill tokens per second at `prefillTokens` (best of two), if measured.
        public var prefillTokensPerSecond: Double?
        /// Tokens of the speed measurement.
        public var prefillTokens: Int?
        /// Perplexity per evaluation file.
        public var perplexity: [String: PerplexityEvaluator.Result]

        enum CodingKeys: String, CodingKey {
            case parameters, perplexity
            case nonzeroParameters = "nonzero_parameters", prefillTokensPerSecond = "prefill_tokens_per_second", prefillTokens = "prefill_tokens"
        }
    }

    /// What a run did and measured.
    public struct Outcome: Codable, Sendable {
        /// Before surgery.
        public var before: Measurement?
        /// After surgery.
        public var after: Measurement?
        /// Every pass report.
        public var report: RunReport
        /// The output path, if written.
        public var output: String?
        /// Bytes of the input and output files.
        public var inputBytes: Int?, outputBytes: Int?
        /// Seconds of one forward pass of the calibration windows through the model's blocks (for speed ratios).
        public var calibrationForwardSeconds: Double?
        /// Peak resident memory of the process, bytes.
        public var peakResidentBytes: Int?
        /// For a quantised GGUF output: how many of the model's zero weights stay exactly zero in the file.
        public var outputZeroRetention: GGUFExporter.ZeroRetention?

        enum CodingKeys: String, CodingKey {
            case before, after, report, output
            case inputBytes = "input_bytes", outputBytes = "output_bytes"
            case calibrationForwardSeconds = "calibration_forward_seconds", peakResidentBytes = "peak_resident_bytes"
            case outputZeroRetention = "output_zero_retention"
        }
    }

    /// The recipe.
    public let recipe: Recipe
    /// Where passes come from.
    public let registry: PassRegistry
    /// Overwrite an existing output.
    public var force = false
    /// Evaluate before and after (when the recipe has `evaluate`).
    public var evaluate = true
    /// Also evaluate before surgery (when `evaluate`); off when the dense numbers are known already.
    public var evaluateBefore = true
    /// Measure prefill speed before and after at this many tokens (0: skip).
    public var speedTokens = 512
    /// Measure the time of one calibration forward pass through the blocks (for speed ratios).
    public var measureCalibrationForward = false
    /// The GGUF file type of the output (F32, exact, by default).
    public var outputType: GGUFFileType = .f32
    /// A lock the caller already holds on the recipe's output (taken before its own checks, as `lancet run`
    /// does); when nil or for another output, `execute` takes the lock itself and releases it on return.
    public var outputLock: OutputLock?

    /// A run of `recipe`.
    public init(recipe: Recipe, registry: PassRegistry) {
        self.recipe = recipe
        self.registry = registry
    }

    /// Runs the recipe. `options` carries progress, logging and checkpoint settings; the checkpoint
    /// directory defaults to `<output>.checkpoint` and the fingerprint is derived from the inputs. The output
    /// is locked for the whole run (`OutputLock`): a second run on the same output throws
    /// `OutputLockError.busy` before loading anything.
    public func execute(options: RunOptions, resume: Bool) throws -> Outcome {
        guard let modelPath = recipe.model else { throw PipelineError.passFailed(pass: "run", block: nil, reason: "the recipe names no model") }
        let held = outputLock.flatMap { $0.output == recipe.output && $0.isHeld ? $0 : nil }
        let lock = try recipe.output.map { output in try held ?? OutputLock.acquire(output: output, log: options.log) }
        defer { if held == nil { lock?.release() } }
        if let output = recipe.output, !force, FileManager.default.fileExists(atPath: output) {
            throw FileWriteError(path: output, reason: "already exists (use --force to overwrite)")
        }
        let pipeline = try Pipeline(recipe: recipe, registry: registry)
        options.log("loading \(modelPath)")
        var model = try ModelLoader.load(modelPath)
        let inputSHA = try ProvenanceRecord.hash(modelAt: modelPath)
        var calibration: CalibrationSet?
        var calibrationRecord: ProvenanceRecord.Calibration?
        if pipeline.needsCalibration || measureCalibrationForward {
            let spec = recipe.calibration
            guard let data = spec.data else { throw PipelineError.needsCalibration(pass: recipe.stages.first?.passes.first?.name ?? "?") }
            guard let tokenizer = model.tokenizer else { throw PipelineError.passFailed(pass: "run", block: nil, reason: "the model has no tokenizer to read calibration text") }
            let sampler = spec.namedSampler.map { " (\($0.rawValue) sampler)" } ?? ""
            options.log("calibration: \(spec.samples) × \(spec.context) tokens from \(data), seed \(spec.seed)\(sampler)")
            let set = try CalibrationSet(corpus: try TextCorpus(path: data), tokenizer: tokenizer, samples: spec.samples, length: spec.context,
                                         seed: spec.seed, sampler: spec.sampler)
            calibration = set
            calibrationRecord = .init(file: data, sha256: set.dataSHA256, samples: spec.samples, context: spec.context, seed: spec.seed,
                                      sampler: spec.namedSampler)
        }
        var outcome = Outcome(report: RunReport())
        outcome.inputBytes = FileSize.bytes(at: modelPath)
        if evaluate && evaluateBefore { outcome.before = try measure(model, options: options, label: "before") }
        if measureCalibrationForward, let calibration {
            let start = Date()
            var x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
            let sweep = BlockSweep(windowsPerCall: options.windowsPerCall, length: calibration.length)
            for (i, b) in model.blocks.enumerated() { x = try sweep.run(b, index: i, inputs: x) }
            outcome.calibrationForwardSeconds = Date().timeIntervalSince(start)
        }
        var runOptions = options
        if runOptions.checkpointDirectory == nil, let output = recipe.output { runOptions.checkpointDirectory = OutputFolder.trimmingTrailingSlashes(output) + ".checkpoint" }
        runOptions.resume = resume
        var h = SHA256()
        h.update(Array((recipe.text + "\n" + inputSHA + "\n" + (calibrationRecord?.sha256 ?? "") + "\n\(recipe.calibration.seed)"
                      + (recipe.calibration.namedSampler.map { "\n\($0.rawValue)" } ?? "")).utf8))
        runOptions.fingerprint = h.finalizeHex()
        outcome.report = try pipeline.run(on: &model, calibration: calibration, options: runOptions)
        let record = ProvenanceRecord(recipe: recipe.text, inputSHA256: inputSHA, calibration: calibrationRecord, passes: outcome.report.passes)
        model.provenance.append(try record.json())
        if evaluate { outcome.after = try measure(model, options: options, label: "after") }
        if let output = recipe.output {
            options.log("writing \(output)")
            try OutputFolder.create(OutputFolder.parent(of: output))
            outcome.outputZeroRetention = try model.save(to: output, ggufType: outputType, source: recipe.model, overwrite: force)
            outcome.output = output
            outcome.outputBytes = FileSize.bytes(at: output)
        }
        outcome.peakResidentBytes = ProcessMemory.peakResidentBytes()
        return outcome
    }

    /// Parameters, prefill speed and perplexities of `model`.
    func measure(_ model: Model, options: RunOptions, label: String) throws -> Measurement {
        var m = Measurement(parameters: model.parameterCount, nonzeroParameters: model.parameterCount - model.blocks.reduce(0) { $0 + $1.parameterCount - $1.keptParameterCount },
                            perplexity: [:])
        if speedTokens > 0 {
            let runner = ModelRunner(model: model)
            let tokens = (0..<speedTokens).map { Int32($0 % model.config.vocabularySize) }
            var best = Double.infinity
            for _ in 0..<2 {
                let t = Date()
                _ = try runner.nextTokenLogits(tokens)
                best = min(best, Date().timeIntervalSince(t))
            }
            m.prefillTokensPerSecond = Double(speedTokens) / best
            m.prefillTokens = speedTokens
        }
        if let spec = recipe.evaluate, let tokenizer = model.tokenizer {
            for file in spec.data {
                options.log("evaluating \(label): \(file)")
                let tokens = tokenizer.encodeText(try TextCorpus(path: file).joined(), addSpecialTokens: true, parseSpecial: false)
                var evaluator = PerplexityEvaluator(model: model, context: spec.context)
                if let from = spec.scoreFrom { evaluator.scoreFrom = from }
                let result = try evaluator.evaluate(tokens: tokens, maxWindows: spec.maxWindows) { done, total in
                    options.progress(done, total, "eval \(label)")
                }
                m.perplexity[file] = result
            }
        }
        return m
    }
}

/// The process's memory use, from `/proc/self/status`.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes, or nil where unavailable.
    public static func peakResidentBytes() -> Int? { status("VmHWM:") }

    /// Current resident set size (VmRSS) in bytes, or nil where unavailable.
    public static func residentBytes() -> Int? { status("VmRSS:") }

    /// A `kB` field of `/proc/self/status`, in bytes.
    static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
        let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
        return kb.map { $0 * 1024 }
    }
}
