import LancetIR

/// How a pipeline run behaves: checkpoints, resumption, progress and logging.
public struct RunOptions: Sendable {
    /// Where per-block checkpoints go (nil: none).
    public var checkpointDirectory: String?
    /// Resume from the checkpoint directory's last finished block.
    public var resume = false
    /// What the checkpoints must belong to (hashes of recipe, model and calibration); a mismatch refuses to resume.
    public var fingerprint = ""
    /// Calibration windows per forward call.
    public var windowsPerCall = 4
    /// Called after each block of a sweep: (done, total, what ran).
    public var progress: @Sendable (Int, Int, String) -> Void = { _, _, _ in }
    /// Called with each finished block's reports and wall time.
    public var blockFinished: @Sendable (Int, [PassReport], Double) -> Void = { _, _, _ in }
    /// Called with each finished model pass's report and wall time.
    public var modelPassFinished: @Sendable (PassReport, Double) -> Void = { _, _ in }
    /// Checked after every checkpointed block; returning true stops the run with `PipelineError.interrupted`
    /// (the checkpoint stays, so `--resume` continues from there).
    public var stopRequested: @Sendable () -> Bool = { false }
    /// Diagnostic lines.
    public var log: @Sendable (String) -> Void = { _ in }

    /// Default options: no checkpoints, quiet.
    public init() {}
}

/// What a run did.
public struct RunReport: Sendable, Codable {
    /// Every pass report in order.
    public var passes: [PassReport] = []
    /// Wall time of the whole run.
    public var seconds: Double = 0
    /// An empty report.
    public init() {}
}

extension Model {
    /// Takes the blocks, embedding, norm and head of `other` (a checkpointed state of this model), keeping
    /// this model's tokenizer and annotations.
    public mutating func replaceWeights(with other: Model) {
        config = other.config
        embedding = other.embedding
        blocks = other.blocks
        finalNorm = other.finalNorm
        outputHead = other.outputHead
        provenance = other.provenance
    }
}
