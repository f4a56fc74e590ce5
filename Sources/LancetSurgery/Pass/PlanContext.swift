import LancetIR
import LancetRuntime
import LancetTensor

/// What a block pass sees when it plans before its stage's sweep (`BlockPass.plan`).
public final class PlanContext: @unchecked Sendable {
    /// What the recipe lets this pass cut.
    public let targets: TargetSelection
    /// The run's seed.
    public let seed: UInt64
    /// Writes a progress or diagnostic line.
    public let log: @Sendable (String) -> Void
    /// Tokens per calibration window (the layout of the rows `denseSweep`'s analyses see).
    public var windowLength: Int { sweep.length }
    let model: Model
    let calibration: [[Int32]]
    let sweep: BlockSweep

    init(model: Model, calibration: [[Int32]], sweep: BlockSweep, targets: TargetSelection, seed: UInt64,
         log: @escaping @Sendable (String) -> Void) {
        self.model = model
        self.calibration = calibration
        self.sweep = sweep
        self.targets = targets
        self.seed = seed
        self.log = log
    }

    /// Streams the calibration windows through the model's blocks as they are (nothing is cut), handing
    /// `visit` each block with the analyses `requests` asks for, computed on that block's inputs from the
    /// blocks before it. Costs one calibration forward through the blocks (plus what self-computing analyses cost).
    public func denseSweep(requests: (Int, Block) -> [any BlockAnalysis], visit: (Int, Block, BlockStatistics) throws -> Void) throws {
        let collector = StatisticsCollector(sweep: sweep)
        var x = try ModelRunner(model: model).embed(Array(calibration.joined()))
        for (i, block) in model.blocks.enumerated() {
            let (output, statistics) = try collector.collect(block, index: i, inputs: x, analyses: requests(i, block))
            try visit(i, block, statistics)
            x = output
        }
    }
}
