import LancetIR
import LancetTensor

/// The analyses of one block, computed on the block's calibration inputs: what a block pass reads through
/// `context.statistics`, by analysis (`value(of:)`), with readers for the built-in ones (`gram(of:)`,
/// `inputNorms(of:)`). The pipeline keeps it for the block across the passes of a stage and drops what a pass
/// invalidates (`invalidate(changed:)`).
public final class BlockStatistics: @unchecked Sendable {
    /// Calibration tokens the sums run over.
    public let tokens: Int
    private var values: [String: any AnalysisValue] = [:]
    /// The values each stored analysis read (empty: it computed itself, and depends on the whole block).
    private var reads: [String: Set<String>] = [:]

    /// An empty set over `tokens` tokens.
    public init(tokens: Int) { self.tokens = tokens }

    /// The value of `analysis`; throws when it was not computed (not requested by the pass).
    public func value<A: BlockAnalysis>(of analysis: A) throws -> A.Value {
        guard let v = values[analysis.id] as? A.Value else {
            throw PipelineError.missingStatistic("analysis \(analysis.id) (request it in requiredAnalyses)")
        }
        return v
    }

    /// Whether the value of `analysis` is held.
    public func holds(_ analysis: any BlockAnalysis) -> Bool { values[analysis.id] != nil }

    /// The ids of the analyses held.
    public var analysisIDs: [String] { values.keys.sorted() }

    /// Stores the value of `analysis` computed on `block`; merges it into a value already held (another chunk).
    public func store<A: BlockAnalysis>(_ value: A.Value, for analysis: A, on block: Block) {
        if var held = values[analysis.id] as? A.Value {
            held.merge(value)
            values[analysis.id] = held
        } else {
            values[analysis.id] = value
        }
        reads[analysis.id] = analysis.reads(in: block)
    }

    /// Drops every analysis that read one of the `changed` values, and every analysis that computed itself when
    /// anything changed. Returns the ids dropped.
    @discardableResult
    public func invalidate(changed: Set<String>) -> [String] {
        guard !changed.isEmpty else { return [] }
        let dropped = values.keys.filter { id in
            let r = reads[id] ?? []
            return r.isEmpty || !r.isDisjoint(with: changed)
        }.sorted()
        for id in dropped {
            values[id] = nil
            reads[id] = nil
        }
        return dropped
    }

    /// A copy holding the same values.
    public func copy() -> BlockStatistics {
        let c = BlockStatistics(tokens: tokens)
        c.values = values
        c.reads = reads
        return c
    }

    /// `XᵀX` of `value` summed over calibration tokens (`[features, features]`; `InputGram`).
    public func gram(of value: String) throws -> Tensor {
        guard let g = values[InputGram(value: value).id] as? TensorSum else { throw PipelineError.missingStatistic("input Gram of value '\(value)'") }
        return g.tensor
    }

    /// ‖X_j‖₂ of every input channel `j` of `value` over calibration tokens (from `InputSquares` or, when only the
    /// Gram was computed, the Gram's diagonal).
    public func inputNorms(of value: String) throws -> [Float] {
        if let s = values[InputSquares(value: value).id] as? ColumnSums { return s.sums.map { Float(max($0, 0).squareRoot()) } }
        guard values[InputGram(value: value).id] != nil else { throw PipelineError.missingStatistic("input channel norms of value '\(value)'") }
        let g = try gram(of: value)
        let n = g.shape[0]
        return g.withUnsafeBufferPointer { p in (0..<n).map { max(p[$0 * n + $0], 0).squareRoot() } }
    }
}
