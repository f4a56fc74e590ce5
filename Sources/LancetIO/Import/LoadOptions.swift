import Foundation

/// How `ModelLoader` treats what it finds in a model file beyond its structure.
public struct LoadOptions: Sendable, Equatable {
    /// What to do with a weight tensor that holds NaN or ±infinity.
    public enum NonFiniteWeights: Sendable, Equatable {
        /// Throw a `ModelImportError` naming the tensor (the default).
        case refuse
        /// Load the model and list the tensors in `ModelLoader.LoadResult.nonFiniteTensors`, for inspection.
        case report
    }

    /// Non-finite weights are refused unless this says otherwise.
    public var nonFiniteWeights: NonFiniteWeights

    /// Options with the given policy.
    public init(nonFiniteWeights: NonFiniteWeights = .refuse) { self.nonFiniteWeights = nonFiniteWeights }

    /// The environment variable that, set to `1`, turns non-finite weights from an error into a warning
    /// for every command (`LANCET_ALLOW_NONFINITE=1 lancet eval …`).
    public static let allowNonFiniteVariable = "LANCET_ALLOW_NONFINITE"

    /// `.refuse`, or `.report` when `LANCET_ALLOW_NONFINITE=1` is set.
    public static var fromEnvironment: LoadOptions {
        ProcessInfo.processInfo.environment[allowNonFiniteVariable] == "1" ? LoadOptions(nonFiniteWeights: .report) : LoadOptions()
    }
}
