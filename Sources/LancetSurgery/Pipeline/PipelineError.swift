/// A failure of a surgery run, located by block and pass where that applies.
public enum PipelineError: Error, CustomStringConvertible {
    /// A pass asked for a statistic the pipeline did not compute (a pass bug).
    case missingStatistic(String)
    /// A pass failed on a block.
    case passFailed(pass: String, block: Int?, reason: String)
    /// The recipe needs calibration data but has none.
    case needsCalibration(pass: String)
    /// The run was stopped after a block; its checkpoint allows resuming.
    case interrupted(stage: Int, block: Int)
    /// A checkpoint cannot be used to resume this run.
    case badCheckpoint(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingStatistic(what): "the pipeline did not compute the \(what)"
        case let .passFailed(pass, block, reason): "pass '\(pass)'" + (block.map { " on block \($0)" } ?? "") + ": \(reason)"
        case let .needsCalibration(pass): "pass '\(pass)' needs calibration data: add `calibration: {data: FILE}` to the recipe or --calibration FILE"
        case let .interrupted(stage, block): "interrupted after block \(block) of stage \(stage + 1); rerun with --resume to continue"
        case let .badCheckpoint(path, reason): "\(path): cannot resume: \(reason)"
        }
    }
}
