import LancetIR
import LancetTensor

extension BlockPassContext {
    /// A context for running a block pass outside the pipeline: in a pass's unit tests, in-tree or in a
    /// plugin package. It carries no calibration statistics and no calibration activations (zero windows),
    /// so it suits passes whose `requiredAnalyses` is empty; passes that need statistics are tested
    /// through the pipeline.
    public static func standalone(blockIndex: Int = 0, blockCount: Int = 1, targets: TargetSelection = .all, seed: UInt64 = 0,
                                  modelFacts: [String: [Double]] = [:], fit: FitSpec = FitSpec(),
                                  log: @escaping @Sendable (String) -> Void = { _ in }) -> BlockPassContext {
        BlockPassContext(blockIndex: blockIndex, blockCount: blockCount, targets: targets, statistics: BlockStatistics(tokens: 0),
                         calibration: CalibrationActivations(inputs: Tensor(zeros: [0, 0]), teacher: Tensor(zeros: [0, 0]), windows: 0, length: 0),
                         seed: seed, modelFacts: modelFacts, fit: fit, log: log)
    }
}
