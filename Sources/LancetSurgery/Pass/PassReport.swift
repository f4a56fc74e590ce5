/// What one pass did to one block (or to the model): filled by the pass, completed by the pipeline
/// with the fitting objective and the block-output error before the cut, after it and after fitting.
public struct PassReport: Sendable, Codable, Equatable {
    /// The pass name.
    public var pass: String
    /// The block index, nil for a model-scope pass.
    public var block: Int?
    /// Named numbers: `sparsity`, `pruned_parameters`, `heads_removed`, …
    public var metrics: [String: Double]
    /// Free-form notes.
    public var notes: [String]
    /// Relative block-output error ‖Y − Y_dense‖² / ‖Y_dense‖² before the cut, after it, and after fitting.
    public var errorBefore: Double?
    public var errorAfterCut: Double?
    public var errorAfterFit: Double?
    /// The fitting method applied and its objective before and after.
    public var fit: String?
    public var fitObjectiveBefore: Double?
    public var fitObjectiveAfter: Double?
    /// Wall time of the cut and of the fit, seconds.
    public var cutSeconds: Double?
    public var fitSeconds: Double?
    /// Wall time of one forward of the finished block over every calibration window (the sweep computing the next
    /// block's inputs), on the block's last pass: the yardstick for the cut's and the fit's seconds.
    public var forwardSeconds: Double?

    /// A report with metrics.
    public init(pass: String, block: Int? = nil, metrics: [String: Double] = [:], notes: [String] = []) {
        self.pass = pass
        self.block = block
        self.metrics = metrics
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case pass, block, metrics, notes, fit
        case errorBefore = "error_before", errorAfterCut = "error_after_cut", errorAfterFit = "error_after_fit"
        case fitObjectiveBefore = "fit_objective_before", fitObjectiveAfter = "fit_objective_after"
        case cutSeconds = "cut_seconds", fitSeconds = "fit_seconds", forwardSeconds = "forward_seconds"
    }
}
