import LancetIR
import LancetRuntime
import LancetTensor

/// Everything a model pass sees.
public final class ModelPassContext: @unchecked Sendable {
    /// What the recipe lets this pass cut.
    public let targets: TargetSelection
    /// Calibration token windows (`[windows][length]`), for passes that run the model themselves.
    public let calibrationWindows: [[Int32]]
    /// The run's seed.
    public let seed: UInt64
    /// The recipe's local-fitting settings.
    public let fit: FitSpec
    /// Writes a progress or diagnostic line.
    public let log: @Sendable (String) -> Void

    init(targets: TargetSelection, calibrationWindows: [[Int32]], seed: UInt64, fit: FitSpec, log: @escaping @Sendable (String) -> Void) {
        self.targets = targets
        self.calibrationWindows = calibrationWindows
        self.seed = seed
        self.fit = fit
        self.log = log
    }
}
