import LancetIR
import LancetTensor

/// `XᵀX` of a block value (the input of one or more linears: `attn_in`, `mlp_in`, `act`, …) over every calibration
/// token, `[features, features]`: what SparseGPT, least-squares fitting and structured importance read. Its
/// diagonal gives the squared input-channel norms Wanda uses (`BlockStatistics.inputNorms(of:)`).
public struct InputGram: BlockAnalysis {
    /// The value.
    public let value: String
    /// The Gram of `value`.
    public init(value: String) { self.value = value }
    public var id: String { "input-gram(\(value))" }
    public func reads(in block: Block) -> Set<String> { [value] }
    public func accumulate(_ sum: inout TensorSum?, values: [String: Tensor]) throws {
        guard let x = values[value] else { throw AnalysisError(id: id, reason: "value '\(value)' was not captured") }
        if sum == nil { sum = TensorSum(Tensor(zeros: [x.shape[1], x.shape[1]])) }
        accumulateGram(x, into: &sum!.tensor)
    }
}

/// Σ x_j² per input channel `j` of a block value over every calibration token: the squared channel norms alone,
/// much cheaper than the Gram when a pass needs only those (Wanda). Not computed when the Gram of the same value
/// is (its diagonal holds them).
public struct InputSquares: BlockAnalysis {
    /// The value.
    public let value: String
    /// The column squares of `value`.
    public init(value: String) { self.value = value }
    public var id: String { "input-squares(\(value))" }
    public func reads(in block: Block) -> Set<String> { [value] }
    public func accumulate(_ sum: inout ColumnSums?, values: [String: Tensor]) throws {
        guard let x = values[value] else { throw AnalysisError(id: id, reason: "value '\(value)' was not captured") }
        if sum == nil { sum = ColumnSums([Double](repeating: 0, count: x.shape[1])) }
        accumulateColumnSquares(x, into: &sum!.sums)
    }
    public func isDerivable(from others: [any BlockAnalysis]) -> Bool {
        others.contains { ($0 as? InputGram)?.value == value }
    }
}
