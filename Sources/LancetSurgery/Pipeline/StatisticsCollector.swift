import Dispatch
import LancetIR
import LancetRuntime
import LancetTensor

/// Computes the dense block's outputs on the current calibration inputs (the teacher) together with the
/// statistics the stage's passes asked for, in one sweep (plus a backward sweep for gradient statistics).
struct StatisticsCollector {
    let sweep: BlockSweep

    /// The teacher outputs and the requested statistics of `block` on `inputs`; with `teacherWindows`, the
    /// teacher of only the first that many windows (the rest of the sweep runs only what the statistics need).
    func collect(_ block: Block, index: Int, inputs: Tensor, requests: Set<StatisticKey>,
                 teacherWindows: Int? = nil) throws -> (teacher: Tensor, statistics: BlockStatistics) {
        let stats = BlockStatistics(tokens: inputs.shape[0])
        var gramValues = Set<String>()
        var squareValues = Set<String>()
        for request in requests {
            switch request {
            case let .inputGram(value): gramValues.insert(value)
            case let .inputSquares(value): squareValues.insert(value)
            case .regionalGradient: break
            }
        }
        squareValues.subtract(gramValues)                      // the Gram's diagonal holds them already
        let teacher = try sweep.run(block, index: index, inputs: inputs, capture: gramValues.union(squareValues),
                                    outputWindows: teacherWindows) { _, values in
            for (name, x) in values {
                let n = x.shape[1]
                if gramValues.contains(name) {
                    if stats.grams[name] == nil { stats.grams[name] = Tensor(zeros: [n, n]) }
                    accumulateGram(x, into: &stats.grams[name]!)
                } else {
                    if stats.squares[name] == nil { stats.squares[name] = [Double](repeating: 0, count: n) }
                    accumulateColumnSquares(x, into: &stats.squares[name]!)
                }
            }
        }
        if requests.contains(.regionalGradient) {
            stats.gradients = try regionalGradients(block, index: index, inputs: inputs)
        }
        return (teacher, stats)
    }

    /// Per parameter, √(mean over windows of (∂‖block(X_w)‖₂/∂θ)²): the regional gradient of Wanda++,
    /// one backward per window.
    func regionalGradients(_ block: Block, index: Int, inputs: Tensor) throws -> [String: Tensor] {
        let length = sweep.length
        let windows = inputs.shape[0] / length
        var sums: [String: Tensor] = [:]
        for w in 0..<windows {
            let x = inputs.slicingRows((w * length)..<((w + 1) * length))
            let context = ExecutionContext(batch: 1, length: length)
            let forward = try BlockExecutor.forward(block, index: index, input: x, context: context, keepValues: true)
            let norm = Float(forward.output.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }.squareRoot())
            let dy = Elementwise.map(forward.output) { $0 / max(norm, 1e-30) }
            let grads = try BlockExecutor.backward(block, index: index, values: forward.values, outputGradient: dy, context: context)
            for (name, g) in grads.parameters {
                let squared = Elementwise.map(g) { $0 * $0 }
                Linear.accumulate(&sums[name], squared)
            }
        }
        return sums.mapValues { s in Elementwise.map(s) { ($0 / Float(windows)).squareRoot() } }
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
