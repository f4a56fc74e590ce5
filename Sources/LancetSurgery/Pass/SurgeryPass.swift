import LancetIR
import LancetTensor

/// A surgery pass: a small value type with a stable name, a one-line summary, typed options with
/// defaults, and one entry point. Passes come in two scopes: `BlockPass` (one block at a time, inside the
/// block-streaming pipeline, followed by local fitting) and `ModelPass` (the whole model at once, e.g.
/// layer removal or search).
///
/// Options are decoded from the recipe (YAML) or the textual pipeline (`name(key=value, …)`) with
/// `Decodable`; every key of `Options` must have a default, given by `defaultOptions`, so that `lancet
/// passes` can list the keys, their types and defaults, and so that unknown keys can be rejected by name.
public protocol SurgeryPass: Sendable {
    /// The options, decoded with defaults for missing keys.
    associatedtype Options: Codable & Sendable

    /// The recipe key, kebab-case or a plain word (`magnitude`, `wanda`, `prune-structured`).
    static var name: String { get }
    /// One line for `lancet passes`.
    static var summary: String { get }
    /// The options a recipe gets when it gives none; every key `Options` encodes is a valid recipe key.
    static var defaultOptions: Options { get }
    /// One line of help per option key.
    static var optionHelp: [String: String] { get }
    /// Whether the pass reads calibration statistics or activations (Wanda, SparseGPT: true); data-free
    /// passes (magnitude pruning) keep the default `false`. `RecipeValidator` rejects a recipe that runs
    /// a calibrated pass without `calibration.data`, before any compute.
    static var needsCalibration: Bool { get }

    /// A pass with `options`; throws `PassOptionError` naming the option when a value is out of range.
    init(options: Options) throws

    /// Checks the pass's static preconditions on `model` for the targeted parameters before any compute
    /// (layer indices in range, head counts still dividing, targets matching something the pass can cut).
    func validate(model: Model, targets: TargetSelection) throws

    /// Why the blocks of `model` may differ in sizes or sub-layers after this pass (blocks that only GGUF's
    /// `deci` architecture holds, not a Hugging Face config), predicted from the options and targets before any
    /// compute, or nil when every block keeps the sizes the others have. `lancet validate` refuses a Hugging
    /// Face folder output on it. The default, nil, is right for passes that keep tensor shapes (masking) or
    /// remove whole blocks; a pass that shrinks or rebuilds blocks says when they can come out different.
    func blockShapeVariation(model: Model, targets: TargetSelection) -> String?
}

extension SurgeryPass {
    public static var optionHelp: [String: String] { [:] }
    public static var needsCalibration: Bool { false }
    public func validate(model: Model, targets: TargetSelection) throws {}
    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? { nil }
}

/// A pass that cuts one block at a time. The pipeline calls `apply` with the block's calibration
/// statistics, then fits the block locally as the recipe says, verifies it, and streams on.
public protocol BlockPass: SurgeryPass {
    /// The calibration analyses this pass reads for `block` (`BlockAnalysis`: `InputGram`, `InputSquares`, or the
    /// pass's own). The pipeline computes them once per block, shares them between the stage's passes that ask for
    /// the same analysis, and keeps them for a later pass unless an earlier one changed what they read.
    func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis]

    /// Cuts the block in place. Pruned weights must be masked (`Block.setMasked`) or removed with the
    /// graph updated; the verifier runs afterwards.
    func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport

    /// Model-wide facts the pass needs before its stage's sweep starts (e.g. OWL's per-block sparsity,
    /// which needs every block's outlier ratio). The pipeline calls it once per stage, before the sweep,
    /// on the model as the stage receives it; the result arrives in every block's `context.modelFacts`.
    /// `context.denseSweep` streams the calibration windows through the uncut blocks when the facts need
    /// activations. The default plans nothing and costs nothing.
    func plan(model: Model, context: PlanContext) throws -> [String: [Double]]

    /// Whether `apply` reads `context.calibration.teacher`, the dense block's outputs on every window.
    /// When no pass of a stage does and the stage fits nothing, the statistics sweep computes the dense
    /// outputs of only the first windows (for the block-error report) and skips the graph after the last
    /// captured value on the others. Defaults to true, the safe answer for a pass that does not say.
    static var readsDenseOutputs: Bool { get }
}

extension BlockPass {
    public static var readsDenseOutputs: Bool { true }
    public func requiredAnalyses(for block: Block, context: BlockPassContext) -> [any BlockAnalysis] { [] }
    public func plan(model: Model, context: PlanContext) throws -> [String: [Double]] { [:] }
}

/// A pass that edits the whole model (remove or merge blocks, search over shapes). Its context
/// (`ModelPassContext`) gives it the pipeline's services for any block or span: calibration sweeps, hidden
/// states, span teachers, statistics and local fitting.
///
/// The recipe's `fit:` and `targets:`/`ignore:` keys mean what the pass makes of them, so a model pass
/// declares whether it uses them (`fitsLocally`, `readsTargets`); `lancet validate` refuses either key on a
/// model pass that does not.
public protocol ModelPass: SurgeryPass {
    /// Edits the model in place. The report's `errorAfterCut`/`errorAfterFit` are the pass's own measure of
    /// the error it left before and after fitting (for a span fit: the fitted blocks' errors against their span
    /// teachers), and its notes say what changed (e.g. the blocks removed); the run prints both.
    func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport

    /// Whether the pass fits with `context.fit` (the recipe's `fit:` settings); false refuses `fit:` on it.
    static var fitsLocally: Bool { get }
    /// Whether the pass reads `context.targets` (the recipe's `targets:`/`ignore:`); false refuses them on it.
    static var readsTargets: Bool { get }
}

extension ModelPass {
    /// Whether this model pass reads calibration windows (override to return false for data-free passes).
    public static var needsCalibration: Bool { true }
    public static var fitsLocally: Bool { false }
    public static var readsTargets: Bool { false }
}

/// A bad option value, named: `sparsity: must be in [0, 1), got 1.5`.
public struct PassOptionError: Error, CustomStringConvertible, Equatable {
    /// The option key.
    public let option: String
    /// What is wrong with its value.
    public let reason: String
    /// Creates an error.
    public init(_ option: String, _ reason: String) {
        self.option = option
        self.reason = reason
    }
    public var description: String { "\(option): \(reason)" }
}
