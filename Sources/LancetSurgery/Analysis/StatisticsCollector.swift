import Dispatch
import LancetIR
import LancetRuntime
import LancetTensor

/// Computes the dense block's outputs on the current calibration inputs (the teacher) together with the analyses
/// the stage's passes asked for, in one forward sweep (the analyses that compute themselves, e.g. with a backward,
/// run after it).
struct StatisticsCollector {
    let sweep: BlockSweep

    /// The teacher outputs and the analyses of `block` on `inputs`, added to `statistics` (a new set when nil);
    /// with `teacherWindows`, the teacher of only the first that many windows (the rest of the sweep runs only what
    /// the analyses read). Analyses `statistics` already holds, and those derivable from the others, are skipped.
    /// With `kept`, the block's values named in `keep` are kept over every window too (within its budget).
    func collect(_ block: Block, index: Int, inputs: Tensor, analyses: [any BlockAnalysis], into statistics: BlockStatistics? = nil,
                 teacherWindows: Int? = nil, keep: Set<String> = [], keeping kept: KeptValues? = nil) throws -> (teacher: Tensor, statistics: BlockStatistics) {
        let stats = statistics ?? BlockStatistics(tokens: inputs.shape[0])
        var wanted: [any BlockAnalysis] = []
        for a in analyses where !stats.holds(a) && !wanted.contains(where: { $0.id == a.id }) { wanted.append(a) }
        let requested = wanted
        wanted.removeAll { a in a.isDerivable(from: requested.filter { $0.id != a.id }) }
        if wanted.isEmpty && teacherWindows == 0 { return (Tensor(zeros: [0, inputs.shape[1]]), stats) }   // all held already
        let streamed = wanted.filter { !$0.reads(in: block).isEmpty }
        let keep = kept == nil ? [] : keep
        let capture = streamed.reduce(into: keep) { $0.formUnion($1.reads(in: block)) }
        var partial: [String: any AnalysisValue] = [:]
        let teacher = try sweep.run(block, index: index, inputs: inputs, capture: capture, outputWindows: teacherWindows) { range, values in
            for a in streamed { try Self.accumulate(a, values: values, into: &partial) }
            kept?.store(values, names: keep, windows: range)
        }
        for a in streamed { Self.store(a, from: partial, block: block, into: stats) }
        for a in wanted where a.reads(in: block).isEmpty {
            try Self.compute(a, block: block, index: index, inputs: inputs, length: sweep.length, into: stats)
        }
        return (teacher, stats)
    }

    /// Stores the streamed sum of `analysis` (the existential opened).
    static func store<A: BlockAnalysis>(_ analysis: A, from partial: [String: any AnalysisValue], block: Block, into stats: BlockStatistics) {
        if let v = partial[analysis.id] as? A.Value { stats.store(v, for: analysis, on: block) }
    }

    /// Computes and stores a self-computing `analysis`.
    static func compute<A: BlockAnalysis>(_ analysis: A, block: Block, index: Int, inputs: Tensor, length: Int, into stats: BlockStatistics) throws {
        stats.store(try analysis.compute(block: block, index: index, inputs: inputs, length: length), for: analysis, on: block)
    }

    /// Adds one call's values to the partial sum of `analysis` (the existential opened).
    static func accumulate<A: BlockAnalysis>(_ analysis: A, values: [String: Tensor], into partial: inout [String: any AnalysisValue]) throws {
        var value = partial[analysis.id] as? A.Value
        try analysis.accumulate(&value, values: values)
        partial[analysis.id] = value
    }
}

/// Adds Σ_t x_tj² of every column `j` of `x` (`[tokens, features]`) to `sums`, in Double (rows split over
/// the cores, each chunk summing into its own partial).
public func accumulateColumnSquares(_ x: Tensor, into sums: inout [Double]) {
    let (rows, n) = (x.shape[0], x.shape[1])
    let chunks = min(processorCount, max(1, rows / 256))
    var partials = (0..<chunks).map { _ in [Double](repeating: 0, count: n) }
    x.withUnsafeBufferPointer { p in
        partials.withUnsafeMutableBufferPointer { parts in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let start = c * rows / chunks, end = (c + 1) * rows / chunks
                addColumnSquares(p.baseAddress! + start * n, rows: end - start, columns: n, into: &parts[c])
            }
        }
    }
    for part in partials { for j in 0..<n { sums[j] += part[j] } }
}

/// Σ_t x_tj² of `rows` rows added to `sums`: Float partial sums over runs of 256 rows, then Double.
private func addColumnSquares(_ p: UnsafePointer<Float>, rows: Int, columns n: Int, into sums: inout [Double]) {
    var partial = [Float](repeating: 0, count: n)
    var r = 0
    while r < rows {
        let end = min(r + 256, rows)
        for i in 0..<n { partial[i] = 0 }
        for t in r..<end { for j in 0..<n { partial[j] += p[t * n + j] * p[t * n + j] } }
        for j in 0..<n { sums[j] += Double(partial[j]) }
        r = end
    }
}
