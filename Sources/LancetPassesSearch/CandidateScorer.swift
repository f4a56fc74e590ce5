import LancetData
import LancetIR
import LancetRuntime
import LancetTensor

/// Scores candidate architectures by the mean next-token NLL of the sliced model (inherited weights, no fitting) on
/// a few held-apart calibration windows: the search's fitness.
///
/// Cheap by reuse, two ways:
/// - **prefix states**: the hidden states after blocks 0…b depend only on the choices of those blocks, so the
///   states after every prefix are kept (least recently used dropped past `capacity` bytes); a candidate runs only
///   the blocks after its longest known prefix. A mutant of a parent that changes block b reruns blocks b… only,
///   and children of the same parents share their prefixes;
/// - **memo**: an architecture seen before is not run again.
public final class CandidateScorer {
    /// The dense model the candidates are cut from.
    public let model: Model
    /// The search space (each block's dense choice).
    public let space: SearchSpace
    /// Each block's unit ranking.
    public let rankings: [UnitRanking]
    /// The scoring windows.
    public let windows: [[Int32]]
    /// Bytes of prefix states kept at most.
    public let capacity: Int

    /// Candidates run (not memoised) and blocks run.
    public private(set) var runs = 0, blocksRun = 0, blocksReused = 0

    private let evaluator: PerplexityEvaluator
    private let embedded: Tensor
    private var prefixes: [Architecture: (states: Tensor, used: Int)] = [:]
    private var heldBytes = 0, clock = 0
    private var memo: [Architecture: Double] = [:]

    /// A scorer of candidates of `model` on `windows` (all of the same length).
    public init(model: Model, space: SearchSpace, rankings: [UnitRanking], windows: [[Int32]], capacity: Int = 512 << 20) throws {
        precondition(!windows.isEmpty && Set(windows.map(\.count)).count == 1, "CandidateScorer: windows of one length needed")
        self.model = model
        self.space = space
        self.rankings = rankings
        self.windows = windows
        self.capacity = capacity
        evaluator = PerplexityEvaluator(model: model, context: windows[0].count)
        embedded = try ModelRunner(model: model).embed(Array(windows.joined()))
    }

    /// The mean NLL per predicted token of `architecture` on the scoring windows.
    public func score(_ architecture: Architecture) throws -> Double {
        if let s = memo[architecture] { return s }
        var start = architecture.count
        while start > 0, prefixes[Array(architecture[..<start])] == nil { start -= 1 }
        var x = start == 0 ? embedded : prefixes[Array(architecture[..<start])]!.states
        clock += 1
        if start > 0 { prefixes[Array(architecture[..<start])]!.used = clock }
        blocksReused += start
        let length = windows[0].count
        let layout = ExecutionContext(batch: windows.count, length: length)
        for b in start..<architecture.count {
            let block = try rankings[b].sliced(model.blocks[b], architecture[b], dense: space.blocks[b].dense)
            x = try BlockExecutor.forward(block, index: b, input: x, context: layout).output
            blocksRun += 1
            remember(Array(architecture[...b]), x)
        }
        let normed = evaluator.runner.finalNorm(x)
        var total = 0.0
        for (w, window) in windows.enumerated() {
            total += evaluator.nll(normedHidden: normed.slicingRows((w * length)..<((w + 1) * length)), targets: window)
        }
        runs += 1
        let s = total / Double(windows.count)
        memo[architecture] = s
        return s
    }

    /// Keeps the states after `prefix`, dropping the least recently used ones past the capacity.
    private func remember(_ prefix: Architecture, _ states: Tensor) {
        let bytes = states.count * MemoryLayout<Float>.size
        guard bytes <= capacity else { return }
        clock += 1
        if prefixes[prefix] == nil { heldBytes += bytes }
        prefixes[prefix] = (states, clock)
        while heldBytes > capacity, let oldest = prefixes.min(by: { $0.value.used < $1.value.used }) {
            heldBytes -= oldest.value.states.count * MemoryLayout<Float>.size
            prefixes[oldest.key] = nil
        }
    }
}
