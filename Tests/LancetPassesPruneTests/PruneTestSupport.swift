import Foundation
import Lancet
@testable import LancetSurgery
import XCTest

/// A tiny seeded model with realistic block inputs: random tokens embedded and run through the dense
/// blocks, so each block sees the activations (norm outliers included) its predecessors produce.
struct PruneFixture {
    let model: Model
    let tokens: [[Int32]]
    let length: Int

    /// A model of `sizes` from `seed` with `windows` random windows of `length` tokens.
    init(_ sizes: TinyLlama.Sizes = TinyLlama.Sizes(), seed: UInt64 = 0, windows: Int = 4, length: Int = 16) {
        model = TinyLlama.make(sizes, seed: seed)
        var g = SeededGenerator(seed: seed &+ 1000)
        tokens = (0..<windows).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: sizes.vocabulary)) } }
        self.length = length
    }

    var sweep: BlockSweep { BlockSweep(windowsPerCall: 2, length: length) }
    var windows: Int { tokens.count }
    var calibrationSet: CalibrationSet { CalibrationSet(windows: tokens, seed: 7) }

    /// The dense inputs of block `index` (`[windows·length, hidden]`).
    func inputs(block index: Int) throws -> Tensor {
        var x = try ModelRunner(model: model).embed(Array(tokens.joined()))
        for i in 0..<index { x = try sweep.run(model.blocks[i], index: i, inputs: x) }
        return x
    }

    /// The values `names` of block `index` captured on its dense inputs, stacked over windows.
    func captured(block index: Int, _ names: Set<String>) throws -> [String: Tensor] {
        let block = model.blocks[index]
        let x = try inputs(block: index)
        let context = ExecutionContext(batch: windows, length: length)
        return try BlockExecutor.forward(block, index: index, input: x, context: context, capture: names).values
    }

    /// The context the pipeline would give `pass` on block `index` (statistics it asks for, computed on the
    /// dense inputs; teacher outputs of the dense block).
    func context(block index: Int, pass: some BlockPass, targets: TargetSelection = .all, facts: [String: [Double]] = [:],
                 fit: FitSpec = FitSpec()) throws -> BlockPassContext {
        let block = model.blocks[index]
        let n = model.blocks.count
        let probe = BlockPassContext(blockIndex: index, blockCount: n, targets: targets, statistics: BlockStatistics(tokens: 0),
                                     calibration: CalibrationActivations(inputs: Tensor(zeros: [0, 0]), teacher: Tensor(zeros: [0, 0]), windows: 0, length: length),
                                     seed: 7, modelFacts: facts, fit: fit, log: { _ in })
        let requests = pass.requiredAnalyses(for: block, context: probe)
        let x = try inputs(block: index)
        let (teacher, statistics) = try StatisticsCollector(sweep: sweep).collect(block, index: index, inputs: x, analyses: requests)
        return BlockPassContext(blockIndex: index, blockCount: n, targets: targets, statistics: statistics,
                                calibration: CalibrationActivations(inputs: x, teacher: teacher, windows: windows, length: length),
                                seed: 7, modelFacts: facts, fit: fit, log: { _ in })
    }

    /// Relative block-output error ‖block(X) − Y_dense‖² / ‖Y_dense‖² of `block` on `context`'s inputs.
    func blockError(_ block: Block, index: Int, context: BlockPassContext) throws -> Double {
        try sweep.run(block, index: index, inputs: context.calibration.inputs).relativeError(to: context.calibration.teacher)
    }
}

/// A pass built from option pairs as a recipe would give them.
func makePass<P: BlockPass>(_ type: P.Type, _ options: [(String, String)]) throws -> P {
    let registry = try PassRegistry([type])
    let opts = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
    guard case let .block(p) = try registry.instantiate(PassInvocation(name: P.name, options: opts)), let pass = p as? P else {
        fatalError("\(P.name) is not a block pass")
    }
    return pass
}

/// A one-stage, one-pass recipe.
func recipe(_ pass: String, _ options: [(String, String)], targets: [String] = []) -> Recipe {
    let opts = OptionValue.object(options.map { (key: $0.0, value: OptionValue.scalar($0.1, quoted: false, location: nil), location: nil) })
    return Recipe(stages: [Stage(name: "prune", passes: [
        PassInvocation(name: pass, options: opts, selection: TargetSelection(targets: targets, ignore: [])),
    ])])
}

/// Counts of pruned elements per row of a mask.
func prunedPerRow(_ mask: Mask) -> [Int] {
    let (rows, cols) = (mask.shape[0], mask.shape[1])
    return (0..<rows).map { r in (0..<cols).reduce(0) { $0 + (mask.keep[r * cols + $1] == 0 ? 1 : 0) } }
}

/// Asserts that every row keeps exactly `n` of each group of `m` consecutive inputs.
func assertNOfM(_ mask: Mask, n: Int, m: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    let (rows, cols) = (mask.shape[0], mask.shape[1])
    for r in 0..<rows {
        for g in stride(from: 0, to: cols, by: m) {
            let kept = (g..<(g + m)).reduce(0) { $0 + Int(mask.keep[r * cols + $1]) }
            if kept != n {
                XCTFail("\(what): row \(r) group \(g) keeps \(kept) of \(m), expected \(n)", file: file, line: line)
                return
            }
        }
    }
}

/// The independent reference ranking: the `k` lowest `scores` of each row (`scores` `[rows, cols]` flat).
func lowestPerRow(_ scores: [Float], rows: Int, cols: Int, k: Int) -> Set<Int> {
    var pruned = Set<Int>()
    for r in 0..<rows {
        let row = (0..<cols).map { (value: scores[r * cols + $0], index: r * cols + $0) }
        for e in row.sorted(by: { $0.value < $1.value }).prefix(k) { pruned.insert(e.index) }
    }
    return pruned
}

func prunedSet(_ mask: Mask) -> Set<Int> { Set(mask.keep.indices.filter { mask.keep[$0] == 0 }) }
