import Foundation
import Lancet
import XCTest

/// Local fitting after a structured cut, and what the cut buys in compute.
final class PruneStructuredFitTests: XCTestCase {
    func testRemovingTwentyPercentWithLstsqGivesLowerBlockErrorThanWithoutFitting() throws {
        for mode in ["kv-groups", "even"] {
            let dense = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 2, ffn: 128, blocks: 3, seed: 11)
            let calibration = StructuredFixture.calibration(vocabulary: 64, windows: 8, length: 96, seed: 12)
            let options = ["sparsity": "0.2", "heads": mode, "channel_multiple": "1"]
            var unfitted = dense, fitted = dense
            let none = StructuredFixture.reports(try StructuredFixture.run(&unfitted, options, calibration: calibration))
            let lstsq = StructuredFixture.reports(try StructuredFixture.run(&fitted, options, fit: FitSpec(method: .lstsq, damping: 0.01),
                                                                            calibration: calibration))
            XCTAssertEqual(LlamaBlock.ffnWidth(of: fitted.blocks[0]), LlamaBlock.ffnWidth(of: unfitted.blocks[0]), "block 0: the same cut either way")
            for i in 0..<3 {
                let e0 = try XCTUnwrap(none[i]?.errorAfterFit), e1 = try XCTUnwrap(lstsq[i]?.errorAfterFit)
                XCTAssertGreaterThan(e0, 0)
                XCTAssertLessThan(e1, e0, "\(mode) block \(i): lstsq \(e1), none \(e0)")
                XCTAssertLessThan(lstsq[i]!.fitObjectiveAfter!, lstsq[i]!.fitObjectiveBefore!)
            }
            // The whole model's final hidden states move less from the dense model's with fitting, too.
            let tokens = Array(calibration.windows.joined())
            func hidden(_ m: Model) throws -> [Float] { try ModelRunner(model: m).hiddenStates(tokens, context: ExecutionContext(batch: 8, length: 96)).scalars }
            let reference = try hidden(dense)
            func error(_ m: Model) throws -> Double {
                let y = try hidden(m)
                return zip(y, reference).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / reference.reduce(0.0) { $0 + Double($1) * Double($1) }
            }
            XCTAssertLessThan(try error(fitted), try error(unfitted), mode)
        }
    }

    func testStructuredPruningLowersCostModelFLOPsAndParameterBytes() throws {
        let dense = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 4, ffn: 128, blocks: 2)
        for mode in ["kv-groups", "even"] {
            var model = dense
            try StructuredFixture.run(&model, ["sparsity": "0.3", "heads": mode, "channel_multiple": "8"])
            let before = CostModel.forwardCost(of: dense, tokens: 256, logitRows: 1)
            let after = CostModel.forwardCost(of: model, tokens: 256, logitRows: 1)
            XCTAssertLessThan(after.flops, before.flops * 0.85, mode)
            XCTAssertLessThan(after.parameterBytes, before.parameterBytes * 0.85, mode)
            for (b, d) in zip(model.blocks, dense.blocks) {
                XCTAssertLessThan(CostModel.cost(of: b, tokens: 256, hiddenSize: 64).flops, CostModel.cost(of: d, tokens: 256, hiddenSize: 64).flops)
            }
        }
    }
}
