import LancetIR
import LancetTensor

/// A calibration analysis of one block: a statistic that is a sum over calibration tokens, computed on the block's
/// current inputs (XᵀX of a value, per-channel squares, gradient outer products, …). Passes and plugins define
/// their own by conforming to this protocol; the pipeline computes what a block pass asks for
/// (`BlockPass.requiredAnalyses`) in one sweep per block, caches it for the block, and keeps it for a later pass of
/// the same stage unless an earlier pass changed something the analysis reads (`AnalysisCache`).
///
/// An analysis either **reads forward values** (`reads(in:)` names them; `accumulate` adds one call's values, a few
/// windows at a time) or, reading none, **computes itself** on the block's inputs (`compute`, e.g. with a
/// backward per window). Its value is a sum that can be merged (`AnalysisValue.merge`), so it can be computed in
/// chunks, spilled, or all-reduced across processes; a value that needs a final transform (a mean, a square root)
/// keeps the sum and applies it when read.
public protocol BlockAnalysis: Sendable {
    /// The accumulated sum.
    associatedtype Value: AnalysisValue

    /// The cache key: equal for two analyses that compute the same thing (kind and parameters).
    var id: String { get }

    /// The block values read in each forward call, by name (the block's input, node outputs). Empty for an analysis
    /// that computes itself (`compute`); such an analysis is recomputed after any change to the block.
    func reads(in block: Block) -> Set<String>

    /// Adds one forward call's captured values (`values[name]` is `[tokens, features]`) to `value` (nil before the
    /// first call).
    func accumulate(_ value: inout Value?, values: [String: Tensor]) throws

    /// The whole value on `inputs` (`[windows·length, hidden]`), for an analysis that reads no forward values.
    func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> Value

    /// Whether this analysis is not needed when `others` are computed too, because its reader derives it from them
    /// (the column squares of a value whose Gram is computed: the Gram's diagonal). Default: false.
    func isDerivable(from others: [any BlockAnalysis]) -> Bool
}

extension BlockAnalysis {
    public func accumulate(_ value: inout Value?, values: [String: Tensor]) throws {}
    public func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> Value {
        throw AnalysisError(id: id, reason: "reads no block values and does not compute itself")
    }
    public func isDerivable(from others: [any BlockAnalysis]) -> Bool { false }
}

/// A sum over calibration tokens that two partial sums (two chunks, two processes) add up to.
public protocol AnalysisValue: Sendable {
    /// Adds `other`, a sum over other tokens, to this one.
    mutating func merge(_ other: Self)
}

/// An analysis that could not be computed or read.
public struct AnalysisError: Error, CustomStringConvertible {
    /// The analysis.
    public let id: String
    /// What went wrong.
    public let reason: String
    /// An error.
    public init(id: String, reason: String) {
        self.id = id
        self.reason = reason
    }
    public var description: String { "analysis \(id): \(reason)" }
}

/// A summed tensor (a Gram matrix, per-parameter sums).
public struct TensorSum: AnalysisValue {
    /// The sum.
    public var tensor: Tensor
    /// A sum.
    public init(_ tensor: Tensor) { self.tensor = tensor }
    public mutating func merge(_ other: TensorSum) {
        var sum: Tensor? = tensor
        Linear.accumulate(&sum, other.tensor)
        tensor = sum!
    }
}

/// Sums per column, in Double.
public struct ColumnSums: AnalysisValue {
    /// The sums.
    public var sums: [Double]
    /// Sums.
    public init(_ sums: [Double]) { self.sums = sums }
    public mutating func merge(_ other: ColumnSums) {
        precondition(sums.count == other.sums.count, "ColumnSums: \(sums.count) and \(other.sums.count) columns")
        for j in sums.indices { sums[j] += other.sums[j] }
    }
}

/// Named tensors summed over a number of items (windows), for statistics that are a mean or its root when read.
public struct NamedTensorSums: AnalysisValue {
    /// The sums by name.
    public var sums: [String: Tensor]
    /// Items summed.
    public var count: Int
    /// Sums over `count` items.
    public init(_ sums: [String: Tensor], count: Int) {
        self.sums = sums
        self.count = count
    }
    public mutating func merge(_ other: NamedTensorSums) {
        for (name, t) in other.sums { Linear.accumulate(&sums[name], t) }
        count += other.count
    }
}
