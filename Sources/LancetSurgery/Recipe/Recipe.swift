import LancetData

/// A surgery recipe: the model, calibration data, stages of passes, evaluation and output.
/// The YAML form is documented in `Docs/Recipes.md`; `RecipeParser` builds this value with every
/// location kept, and `PipelineText` builds the `stages` from the one-line form `a(k=v) | b(k=v)`.
public struct Recipe: Sendable, Equatable {
    /// The recipe format version (1).
    public var version: Int
    /// The input model (GGUF file or Hugging Face folder), resolved against the recipe's folder.
    public var model: String?
    /// Calibration data settings.
    public var calibration: CalibrationSpec
    /// Stages in order.
    public var stages: [Stage]
    /// Evaluation before and after, if wanted.
    public var evaluate: EvaluateSpec?
    /// The output path (`.gguf`, or a folder for safetensors + config.json).
    public var output: String?
    /// The recipe's text as written (kept in the output's provenance).
    public var text: String
    /// The recipe file, for error messages ("<pipeline>" for the textual form).
    public var source: String
    /// Where each top-level setting was written, by key path (`model`, `calibration.data`, `calibration.samples`,
    /// `evaluate.data[1]`, `output`), for located validation errors; empty for recipes built in code.
    public var locations: [String: SourceLocation]

    /// Creates a recipe.
    public init(version: Int = 1, model: String? = nil, calibration: CalibrationSpec = CalibrationSpec(), stages: [Stage],
                evaluate: EvaluateSpec? = nil, output: String? = nil, text: String = "", source: String = "<pipeline>",
                locations: [String: SourceLocation] = [:]) {
        self.version = version
        self.model = model
        self.calibration = calibration
        self.stages = stages
        self.evaluate = evaluate
        self.output = output
        self.text = text
        self.source = source
        self.locations = locations
    }

    public static func == (a: Recipe, b: Recipe) -> Bool {
        a.version == b.version && a.model == b.model && a.calibration == b.calibration && a.stages == b.stages
            && a.evaluate == b.evaluate && a.output == b.output
    }

    /// Where the setting at `path` was written, or the recipe file when unknown.
    public func location(of path: String) -> SourceLocation {
        locations[path] ?? SourceLocation(file: source)
    }
}

/// Where a recipe item was written, for errors: `recipe.yaml:7:9`.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var file: String
    /// 1-based line, 0 when unknown.
    public var line: Int
    /// 1-based column, 0 when unknown.
    public var column: Int
    /// Creates a location.
    public init(file: String, line: Int = 0, column: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }
}

/// Calibration data: documents (plain text or JSON lines with `text`, gzip allowed) joined with a blank
/// line, tokenised, and `samples` windows of `context` tokens drawn at seeded random offsets by `sampler`.
public struct CalibrationSpec: Sendable, Equatable {
    /// The data file; nil uses no calibration (only data-free passes can run).
    public var data: String?
    /// Number of windows.
    public var samples: Int
    /// Tokens per window.
    public var context: Int
    /// Sampling seed.
    public var seed: UInt64
    /// The generator that draws the window starts (Lancet's by default; `python` for Python's `random`).
    public var sampler: CalibrationSampler
    /// Creates settings; the defaults are the papers' (128 × 2048, seed 0).
    public init(data: String? = nil, samples: Int = 128, context: Int = 2048, seed: UInt64 = 0, sampler: CalibrationSampler = .lancet) {
        self.data = data
        self.samples = samples
        self.context = context
        self.seed = seed
        self.sampler = sampler
    }

    /// `sampler` when it is not the default: what logs, provenance records, run fingerprints and printed recipes
    /// mention, so that those of default runs stay as they were before samplers existed.
    public var namedSampler: CalibrationSampler? { sampler == .lancet ? nil : sampler }
}

/// Perplexity evaluation before and after surgery.
public struct EvaluateSpec: Sendable, Equatable {
    /// The evaluation text files.
    public var data: [String]
    /// Tokens per window.
    public var context: Int
    /// At most this many windows per file (all when nil).
    public var maxWindows: Int?
    /// The first position of each window whose prediction is scored (nil: every prediction), e.g. the end of the
    /// prompt an input-dependent op reads.
    public var scoreFrom: Int?
    /// Creates settings.
    public init(data: [String], context: Int = 2048, maxWindows: Int? = nil, scoreFrom: Int? = nil) {
        self.data = data
        self.context = context
        self.maxWindows = maxWindows
        self.scoreFrom = scoreFrom
    }
}

/// A named list of passes; block-scope passes of one stage share one streaming sweep over the blocks.
public struct Stage: Sendable, Equatable {
    /// The stage's name (for reports).
    public var name: String
    /// The passes in order.
    public var passes: [PassInvocation]
    /// Creates a stage.
    public init(name: String, passes: [PassInvocation]) {
        self.name = name
        self.passes = passes
    }
}

/// One use of a pass: its name, its raw options (decoded and checked against the pass's `Options` by the
/// registry), what it may cut, and how its cuts are fitted. Equality ignores `location` and `path`.
public struct PassInvocation: Sendable, Equatable {
    /// The pass name as written.
    public var name: String
    /// The options as written, in source order.
    public var options: OptionValue
    /// Target patterns (every block linear when empty).
    public var selection: TargetSelection
    /// Local fitting after the cut.
    public var fit: FitSpec
    /// Where the pass was written.
    public var location: SourceLocation
    /// The key path in the recipe, e.g. `stages[0].passes[1]`.
    public var path: String

    /// Creates an invocation.
    public init(name: String, options: OptionValue = .object([]), selection: TargetSelection = .all, fit: FitSpec = FitSpec(),
                location: SourceLocation = SourceLocation(file: "<pipeline>"), path: String = "") {
        self.name = name
        self.options = options
        self.selection = selection
        self.fit = fit
        self.location = location
        self.path = path
    }

    public static func == (a: PassInvocation, b: PassInvocation) -> Bool {
        a.name == b.name && a.options == b.options && a.selection == b.selection && a.fit == b.fit
    }
}

/// Local fitting after a cut, chosen per pass in the recipe (`fit:`).
public struct FitSpec: Sendable, Equatable, Codable {
    /// The fitting method.
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// No fitting.
        case none
        /// Per linear, closed-form least squares of each row's surviving weights against the dense
        /// layer's output on the same inputs (Cholesky of XᵀX + damping).
        case lstsq
        /// A few Adam steps on the block's surviving weights to match the dense block's output (Wanda++'s
        /// regional optimisation).
        case regional
        /// ADMM reformation of the kept weights of every linear whose mask removes input columns, against the dense
        /// layer on its dense inputs (`Reformation`; the architecture-search paper's): ρ is `damping` × mean diag XᵀX,
        /// the iterations are `steps`.
        case reform
    }
    /// What a fit matches: the dense block on the inputs the cut block receives, or the dense model.
    public enum Teacher: String, Sendable, Codable, CaseIterable {
        /// The dense block run on the same inputs as the cut block (the inputs the blocks before it, already
        /// cut, produce): each block repairs its own cut only.
        case block
        /// The dense model: the dense block run on the dense model's own inputs to it, so that a fit also absorbs
        /// what the blocks before it changed (their error reaching this block). Costs one more dense block
        /// forward per block and a second copy of the calibration activations.
        case model
    }
    /// The method.
    public var method: Method
    /// Ridge damping for `lstsq`, relative to the mean diagonal of XᵀX.
    public var damping: Double
    /// Optimisation steps for `regional`.
    public var steps: Int
    /// Adam learning rate for `regional`.
    public var learningRate: Double
    /// Calibration windows per `regional` step.
    public var batch: Int
    /// For `lstsq` on an op with a linear router (a mixture): rounds of refitting the router from the refitted
    /// experts (`RouterFit`), each followed by a refit of the readout (the experts' down projections).
    public var routerRounds: Int
    /// What the fit matches (`block`, the default, or `model`).
    public var teacher: Teacher

    /// Creates settings; the default is no fitting.
    public init(method: Method = .none, damping: Double = 0.01, steps: Int = 10, learningRate: Double = 1e-4, batch: Int = 4,
                routerRounds: Int = 1, teacher: Teacher = .block) {
        self.method = method
        self.damping = damping
        self.steps = steps
        self.learningRate = learningRate
        self.batch = batch
        self.routerRounds = routerRounds
        self.teacher = teacher
    }

    enum CodingKeys: String, CodingKey {
        case method, damping, steps, batch, teacher
        case learningRate = "learning_rate", routerRounds = "router_rounds"
    }

    /// Decodes settings; `router_rounds` and `teacher` are absent from those written before they existed
    /// (defaults 1 and `block`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(method: try c.decode(Method.self, forKey: .method), damping: try c.decode(Double.self, forKey: .damping),
                  steps: try c.decode(Int.self, forKey: .steps), learningRate: try c.decode(Double.self, forKey: .learningRate),
                  batch: try c.decode(Int.self, forKey: .batch), routerRounds: try c.decodeIfPresent(Int.self, forKey: .routerRounds) ?? 1,
                  teacher: try c.decodeIfPresent(Teacher.self, forKey: .teacher) ?? .block)
    }

    /// Encodes settings; `teacher` only when it is not the default, so that the fingerprints and provenance of
    /// runs that do not use it stay as they were before it existed.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(damping, forKey: .damping)
        try c.encode(steps, forKey: .steps)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(batch, forKey: .batch)
        try c.encode(routerRounds, forKey: .routerRounds)
        if teacher != .block { try c.encode(teacher, forKey: .teacher) }
    }
}
