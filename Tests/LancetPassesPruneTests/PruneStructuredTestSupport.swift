import Foundation
import Lancet
import XCTest

/// Tiny seeded models, synthetic calibration windows and one-pass pipeline runs for the
/// `prune-structured` tests.
enum StructuredFixture {
    /// A tiny Llama model with `heads` query heads over `kvHeads` KV heads (head size `hidden / heads`).
    static func model(hidden: Int = 48, heads: Int = 4, kvHeads: Int = 2, ffn: Int = 96, blocks: Int = 2, seed: UInt64 = 1) -> Model {
        var s = TinyLlama.Sizes()
        s.hidden = hidden
        s.heads = heads
        s.kvHeads = kvHeads
        s.ffn = ffn
        s.blocks = blocks
        return TinyLlama.make(s, seed: seed)
    }

    /// `windows` windows of `length` uniformly random token ids.
    static func calibration(vocabulary: Int, windows: Int = 8, length: Int = 64, seed: UInt64 = 3) -> CalibrationSet {
        var g = SeededGenerator(seed: seed)
        let ids = (0..<windows).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: vocabulary)) } }
        return CalibrationSet(windows: ids, seed: seed, dataSHA256: "synthetic")
    }

    /// Recipe options from text values (`["sparsity": "0.3", "heads": "even"]`).
    static func options(_ values: [String: String]) -> OptionValue {
        .object(values.sorted { $0.key < $1.key }.map { (key: $0.key, value: .scalar($0.value, quoted: false, location: nil), location: nil) })
    }

    /// Runs `prune-structured` (after `before`, in the same stage) on `model` through the pipeline.
    @discardableResult
    static func run(_ model: inout Model, _ values: [String: String], targets: [String] = [], fit: FitSpec = FitSpec(),
                    before: [PassInvocation] = [], calibration: CalibrationSet? = nil) throws -> RunReport {
        let invocation = PassInvocation(name: PruneStructuredPass.name, options: options(values),
                                        selection: TargetSelection(targets: targets, ignore: []), fit: fit)
        let recipe = Recipe(stages: [Stage(name: "structured", passes: before + [invocation])])
        let pipeline = try Pipeline(recipe: recipe, registry: BuiltinPasses.registry())
        return try pipeline.run(on: &model, calibration: calibration ?? self.calibration(vocabulary: model.config.vocabularySize))
    }

    /// The `prune-structured` reports of a run, by block.
    static func reports(_ run: RunReport) -> [Int: PassReport] {
        Dictionary(uniqueKeysWithValues: run.passes.filter { $0.pass == PruneStructuredPass.name }.map { ($0.block!, $0) })
    }

    /// Linear parameters of a block's attention and MLP (weights and biases, no norms).
    static func linearParameters(_ block: Block) -> Int {
        block.parameters.filter { $0.key.hasPrefix("attn.") || $0.key.hasPrefix("mlp.") }.values.reduce(0) { $0 + $1.count }
    }

    /// Block 0's calibration inputs (the embedded windows) as one `[windows·length, hidden]` tensor.
    static func blockZeroInputs(_ model: Model, _ calibration: CalibrationSet) throws -> Tensor {
        try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
    }

    /// Values `names` of `block` on `inputs`, run as `windows` sequences.
    static func values(_ block: Block, inputs: Tensor, windows: Int, _ names: Set<String>) throws -> [String: Tensor] {
        let context = ExecutionContext(batch: windows, length: inputs.shape[0] / windows)
        return try BlockExecutor.forward(block, input: inputs, context: context, capture: names).values
    }

    /// For each row of `cut` (`[rows, columns]`), the index of the equal row of `original`.
    static func matchRows(_ cut: Tensor, in original: Tensor) -> [Int] {
        let (c, n) = (cut.shape[1], original.shape[0])
        return (0..<cut.shape[0]).map { r in
            (0..<n).first { o in (0..<c).allSatisfy { cut[r, $0] == original[o, $0] } } ?? -1
        }
    }

    /// The last-token logits of `model` on a few tokens (to check that a cut model runs).
    static func runs(_ model: Model) throws -> [Float] {
        try ModelRunner(model: model).nextTokenLogits((0..<12).map { Int32($0 % model.config.vocabularySize) })
    }

    /// The indices of the `k` largest `scores` (ties: the higher index), ascending.
    static func top(_ k: Int, of scores: [Double]) -> [Int] {
        Array(scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 > $1 }.prefix(k)).sorted()
    }
}
