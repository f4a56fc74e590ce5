import Foundation
import Lancet
import XCTest

// TEMPORARY measurement (not committed): prune-structured on SmolLM2-135M, fit none vs lstsq.
final class PruneStructuredRealModelTmpTests: XCTestCase {
    func testMeasureStructuredPruningOnSmolLM2() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dense = try ModelLoader.load(root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path)
        let tokenizer = try XCTUnwrap(dense.tokenizer)
        let sparsity = ProcessInfo.processInfo.environment["STRUCT_SPARSITY"] ?? "0.2"
        let c4 = try TextCorpus(path: "/work/shared/data/c4/c4-train.00000-of-01024.first1041docs.text-only.json.gz")
        let calibration = try CalibrationSet(corpus: c4, tokenizer: tokenizer, samples: 8, length: 2048, seed: 0)
        let wiki = try TextCorpus(path: "/work/shared/data/wikitext-2/wiki.test.raw")
        let evalTokens = tokenizer.encodeText(wiki.joined(), addSpecialTokens: true, parseSpecial: false)
        let prompt = Array(evalTokens[0..<2048])

        func prefill(_ m: Model) throws -> Double {
            let runner = ModelRunner(model: m)
            var best = Double.infinity
            for _ in 0..<3 {
                let t = Date()
                _ = try runner.nextTokenLogits(prompt)
                best = min(best, Date().timeIntervalSince(t))
            }
            return 2048 / best
        }
        func ppl(_ m: Model) throws -> Double { try PerplexityEvaluator(model: m, context: 2048).evaluate(tokens: evalTokens, maxWindows: 4).perplexity }

        let denseFlops = CostModel.forwardCost(of: dense, tokens: 2048, logitRows: 1).flops
        print("MEASURE dense: blockParams \(dense.blocks.reduce(0) { $0 + $1.parameterCount }) GFLOP \(denseFlops / 1e9) prefill \(try prefill(dense)) tok/s ppl \(try ppl(dense))")
        for method in [FitSpec.Method.none, .lstsq] {
            var model = dense
            var values = ["sparsity": sparsity]
            if let share = ProcessInfo.processInfo.environment["STRUCT_SHARE"] { values["attention_share"] = share }
            if let mode = ProcessInfo.processInfo.environment["STRUCT_HEADS"] { values["heads"] = mode }
            let t = Date()
            let report = try StructuredFixture.run(&model, values, fit: FitSpec(method: method, damping: 0.01), calibration: calibration)
            let seconds = Date().timeIntervalSince(t)
            try Verifier.verify(model)
            let shapes = model.blocks.map { b in "\(LlamaBlock.attentionSizes(of: b).map { "\($0.heads)/\($0.kvHeads)" } ?? "-"):\(LlamaBlock.ffnWidth(of: b) ?? 0)" }
            let errors = report.passes.map { String(format: "%.3f", $0.errorAfterFit ?? -1) }
            let flops = CostModel.forwardCost(of: model, tokens: 2048, logitRows: 1).flops
            print("MEASURE \(method.rawValue): \(String(format: "%.0f", seconds)) s, blockParams \(model.blocks.reduce(0) { $0 + $1.parameterCount }) GFLOP \(flops / 1e9)")
            print("MEASURE \(method.rawValue) shapes heads/kv:ffn \(shapes.joined(separator: " "))")
            print("MEASURE \(method.rawValue) block errors \(errors.joined(separator: " "))")
            print("MEASURE \(method.rawValue) prefill \(try prefill(model)) tok/s ppl \(try ppl(model))")
        }
    }
}
