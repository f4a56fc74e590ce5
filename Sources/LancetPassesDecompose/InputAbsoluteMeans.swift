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
        let partial = Self.columnAbsoluteSums(x)
        if sum == nil { sum = ColumnSums(partial) } else { for j in partial.indices { sum!.sums[j] += partial[j] } }
    }

    /// Σ_t |x_tj| of every column `j` of `x` (`[tokens, features]`), in Double.
    static func columnAbsoluteSums(_ x: Tensor) -> [Double] {
        let (rows, n) = (x.shape[0], x.shape[1])
        var sums = [Double](repeating: 0, count: n)
        x.withUnsafeBufferPointer { p in for t in 0..<rows { for j in 0..<n { sums[j] += Double(abs(p[t * n + j])) } } }
        return sums
    }
}

extension BlockStatistics {
    /// The mean |x_j| of every input channel of `value` (`InputAbsoluteMeans`).
    public func absoluteMeans(of value: String) throws -> [Float] {
        let sums = try self.value(of: InputAbsoluteMeans(value: value))
        return sums.sums.map { Float($0 / Double(max(tokens, 1))) }
    }
}
