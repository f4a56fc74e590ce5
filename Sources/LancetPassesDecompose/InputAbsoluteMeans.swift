import LancetIR
import LancetSurgery
import LancetTensor

/// Σ |x_j| per input channel `j` of a block value over every calibration token: ASVD's activation scale, read as
/// the mean |x_j| (divide by the statistics' token count, `BlockStatistics.absoluteMeans(of:)`).
public struct InputAbsoluteMeans: BlockAnalysis {
    /// The value.
    public let value: String
    /// The absolute column sums of `value`.
    public init(value: String) { self.value = value }
    public var id: String { "input-absolute-sums(\(value))" }
    public func reads(in block: Block) -> Set<String> { [value] }
    public func accumulate(_ sum: inout ColumnSums?, values: [String: Tensor]) throws {
        guard let x = values[value] else { throw AnalysisError(id: id, reason: "value '\(value)' was not captured") }
        let n = x.shape[1]
        if sum == nil { sum = ColumnSums([Double](repeating: 0, count: n)) }
        var partial = [Double](repeating: 0, count: n)
        x.withUnsafeBufferPointer { p in
            for t in 0..<(p.count / max(n, 1)) { for j in 0..<n { partial[j] += Double(abs(p[t * n + j])) } }
        }
        for j in 0..<n { sum!.sums[j] += partial[j] }
    }
}

extension BlockStatistics {
    /// The mean |x_j| of every input channel of `value` (`InputAbsoluteMeans`).
    public func absoluteMeans(of value: String) throws -> [Float] {
        let sums = try self.value(of: InputAbsoluteMeans(value: value))
        return sums.sums.map { Float($0 / Double(max(tokens, 1))) }
    }
}
