import Foundation
import Lancet
import XCTest

final class PruneStructuredTests: XCTestCase {
    func testRemovingHeadsAndChannelsLeavesAModelThatVerifiesAndRuns() throws {
        for (heads, kvHeads) in [(4, 2), (8, 2), (4, 4), (6, 3)] {
            for mode in ["kv-groups", "even"] {
                for sparsity in ["0.1", "0.2", "0.5"] {
                    var model = StructuredFixture.model(hidden: heads * 8, heads: heads, kvHeads: kvHeads, ffn: 80)
                    let dense = model
                    try StructuredFixture.run(&model, ["sparsity": sparsity, "heads": mode, "channel_multiple": "1"])
                    try Verifier.verify(model)
                    let logits = try StructuredFixture.runs(model)
                    XCTAssertTrue(logits.allSatisfy(\.isFinite), "\(heads)/\(kvHeads) \(mode) \(sparsity)")
                    for (b, d) in zip(model.blocks, dense.blocks) {
                        XCTAssertLessThan(b.parameterCount, d.parameterCount, "\(heads)/\(kvHeads) \(mode) \(sparsity)")
                        let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: b))
                        XCTAssertEqual(a.heads % a.kvHeads, 0)
                        XCTAssertEqual(b.parameters["attn.q.weight"]!.shape[0], a.heads * a.headDimensions)
                        XCTAssertEqual((b.node("attn.q_rope")!.op as! RopeOp).heads, a.heads)
                        XCTAssertEqual((b.node("attn.k_rope")!.op as! RopeOp).heads, a.kvHeads)
                    }
                }
            }
        }
    }

    func testParameterCountDropsByTheRequestedFractionWithinOneChannel() throws {
        for share in [nil, "0", "0.3", "1"] as [String?] {
            for sparsity in [0.1, 0.2, 0.35] {
                var model = StructuredFixture.model()
                let dense = model
                var values = ["sparsity": "\(sparsity)", "channel_multiple": "1"]
                if let share { values["attention_share"] = share }
                let reports = StructuredFixture.reports(try StructuredFixture.run(&model, values))
                for (i, (b, d)) in zip(model.blocks, dense.blocks).enumerated() {
                    let before = StructuredFixture.linearParameters(d), after = StructuredFixture.linearParameters(b)
                    let removed = Double(before - after), wanted = sparsity * Double(before)
                    let channel = 3.0 * 48, group = 2.0 * 12 * 48 * 2 + 2 * 12 * 48
                    // Channels absorb the rounding of the head count unless the head units alone overshoot.
                    let tolerance = share == "1" ? group / 2 : channel / 2
                    XCTAssertLessThanOrEqual(abs(removed - wanted), tolerance, "share \(share ?? "auto") sparsity \(sparsity) block \(i)")
                    XCTAssertEqual(reports[i]!.metrics["parameters_after"], Double(b.parameterCount))
                    XCTAssertEqual(reports[i]!.metrics["removed_fraction"]!, removed / Double(before), accuracy: 1e-12)
                }
            }
        }
    }

    func testKVGroupsModeRemovesKVHeadsTogetherWithTheirQueryGroups() throws {
        var model = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 4, ffn: 64)
        let dense = model
        try StructuredFixture.run(&model, ["sparsity": "0.3", "heads": "kv-groups", "attention_share": "1"])
        let d = 8, perGroup = 2
        for (b, o) in zip(model.blocks, dense.blocks) {
            let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: b))
            XCTAssertLessThan(a.kvHeads, 4)
            XCTAssertEqual(a.heads, a.kvHeads * perGroup)
            // Each kept KV head's rows of k and v come from one original KV head, in ascending order ...
            let kRows = StructuredFixture.matchRows(b.parameters["attn.k.weight"]!, in: o.parameters["attn.k.weight"]!)
            let vRows = StructuredFixture.matchRows(b.parameters["attn.v.weight"]!, in: o.parameters["attn.v.weight"]!)
            XCTAssertEqual(kRows, vRows)
            let groups = (0..<a.kvHeads).map { kRows[$0 * d] / d }
            XCTAssertEqual(groups, groups.sorted())
            XCTAssertEqual(kRows, groups.flatMap { ($0 * d)..<(($0 + 1) * d) })
            // ... and the query heads (q rows, o columns) are exactly that KV head's group.
            let expectedQ = groups.flatMap { ($0 * perGroup * d)..<(($0 + 1) * perGroup * d) }
            XCTAssertEqual(StructuredFixture.matchRows(b.parameters["attn.q.weight"]!, in: o.parameters["attn.q.weight"]!), expectedQ)
            XCTAssertEqual(StructuredFixture.matchRows(b.parameters["attn.o.weight"]!.transposed(), in: o.parameters["attn.o.weight"]!.transposed()), expectedQ)
        }
    }

    func testEvenModeKeepsEveryKVHeadAndTheSameNumberOfQueryHeadsPerGroup() throws {
        for sparsity in ["0.2", "0.4"] {
            var model = StructuredFixture.model(hidden: 64, heads: 8, kvHeads: 2, ffn: 64)
            let dense = model
            try StructuredFixture.run(&model, ["sparsity": sparsity, "heads": "even", "attention_share": "1"])
            let d = 8
            for (b, o) in zip(model.blocks, dense.blocks) {
                let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: b))
                XCTAssertEqual(a.kvHeads, 2)
                XCTAssertLessThan(a.heads, 8)
                XCTAssertEqual(a.heads % 2, 0)
                XCTAssertEqual(b.parameters["attn.k.weight"]!, o.parameters["attn.k.weight"]!)
                XCTAssertEqual(b.parameters["attn.v.weight"]!, o.parameters["attn.v.weight"]!)
                let perGroup = a.heads / 2
                let qRows = StructuredFixture.matchRows(b.parameters["attn.q.weight"]!, in: o.parameters["attn.q.weight"]!)
                let heads = (0..<a.heads).map { qRows[$0 * d] / d }
                XCTAssertEqual(heads, heads.sorted())
                for j in 0..<a.heads {
                    // New query head j reads KV head j / perGroup, so it must come from that original group.
                    XCTAssertEqual(heads[j] / 4, j / perGroup, "sparsity \(sparsity): head \(heads[j]) landed in group \(j / perGroup)")
                }
            }
        }
    }

    func testRemovingAWholeSublayerYieldsABlockWithoutItThatRuns() throws {
        var model = StructuredFixture.model()
        let report = StructuredFixture.reports(try StructuredFixture.run(&model, ["remove_sublayer_below": "1e9"], targets: ["blocks.0.mlp.*", "blocks.1.attn.*"]))
        XCTAssertNil(LlamaBlock.ffnWidth(of: model.blocks[0]))
        XCTAssertNotNil(LlamaBlock.attentionSizes(of: model.blocks[0]))
        XCTAssertNil(model.blocks[0].node("mlp_norm"))
        XCTAssertNil(LlamaBlock.attentionSizes(of: model.blocks[1]))
        XCTAssertEqual(LlamaBlock.ffnWidth(of: model.blocks[1]), 96)
        XCTAssertFalse(model.blocks[1].parameters.keys.contains { $0.hasPrefix("attn") })
        XCTAssertEqual(report[0]!.metrics["removed_fraction"], 1)
        XCTAssertGreaterThan(report[0]!.metrics["mlp_importance"]!, 0)
        try Verifier.verify(model)
        XCTAssertTrue(try StructuredFixture.runs(model).allSatisfy(\.isFinite))
    }

    func testRemovingEveryHeadNeedsAllowRemoveAttention() throws {
        var model = StructuredFixture.model()
        try StructuredFixture.run(&model, ["sparsity": "0.9", "attention_share": "1", "min_heads": "1"], targets: ["blocks.*.attn.*"])
        XCTAssertEqual(model.blocks.map { LlamaBlock.attentionSizes(of: $0)?.kvHeads }, [1, 1])

        var open = StructuredFixture.model()
        try StructuredFixture.run(&open, ["sparsity": "0.9", "attention_share": "1", "min_heads": "0", "allow_remove_attention": "true"],
                                  targets: ["blocks.*.attn.*"])
        XCTAssertTrue(open.blocks.allSatisfy { LlamaBlock.attentionSizes(of: $0) == nil })
        try Verifier.verify(open)
        XCTAssertTrue(try StructuredFixture.runs(open).allSatisfy(\.isFinite))
    }

    func testKeptFFNWidthIsAMultipleOfChannelMultipleAndAtLeastMinChannels() throws {
        for (multiple, minimum) in [(8, 1), (32, 1), (16, 40), (1, 90)] {
            var model = StructuredFixture.model(ffn: 96)
            try StructuredFixture.run(&model, ["sparsity": "0.5", "attention_share": "0", "channel_multiple": "\(multiple)", "min_channels": "\(minimum)"])
            for b in model.blocks {
                let width = try XCTUnwrap(LlamaBlock.ffnWidth(of: b))
                XCTAssertEqual(width % multiple, 0, "multiple \(multiple)")
                XCTAssertGreaterThanOrEqual(width, minimum)
                XCTAssertLessThan(width, 96)
            }
        }
    }

    func testMasksOfEarlierCutsAreSlicedWithTheirWeights() throws {
        var model = StructuredFixture.model()
        let magnitude = PassInvocation(name: "magnitude", options: StructuredFixture.options(["sparsity": "0.5"]))
        try StructuredFixture.run(&model, ["sparsity": "0.3", "channel_multiple": "1"], before: [magnitude])
        for b in model.blocks {
            XCTAssertEqual(Set(b.masks.keys), Set(["attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight", "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"]))
            for (name, mask) in b.masks {
                XCTAssertEqual(mask.shape, b.parameters[name]!.shape, name)
                XCTAssertEqual(mask.sparsity, 0.5, accuracy: 0.08, name)
            }
        }
        try Verifier.verify(model)   // also checks that the weights are zero where the masks prune
    }

    func testAPassAfterTheCutInTheSameStageScoresTheShrunkBlock() throws {
        // Wanda after prune-structured on the same blocks reads input norms of the cut block (fewer FFN
        // channels, fewer heads), not the dense block's, and both fits run on the shrunk shapes.
        var model = StructuredFixture.model()
        let structured = PassInvocation(name: PruneStructuredPass.name, options: StructuredFixture.options(["sparsity": "0.3", "channel_multiple": "1"]),
                                        fit: FitSpec(method: .lstsq))
        let wanda = PassInvocation(name: "wanda", options: StructuredFixture.options(["sparsity": "0.5"]), fit: FitSpec(method: .lstsq))
        let recipe = Recipe(stages: [Stage(name: "both", passes: [structured, wanda])])
        let report = try Pipeline(recipe: recipe, registry: BuiltinPasses.registry())
            .run(on: &model, calibration: StructuredFixture.calibration(vocabulary: model.config.vocabularySize))
        try Verifier.verify(model)
        XCTAssertEqual(report.passes.map(\.pass), [PruneStructuredPass.name, "wanda", PruneStructuredPass.name, "wanda"])
        for b in model.blocks {
            XCTAssertLessThan(try XCTUnwrap(LlamaBlock.ffnWidth(of: b)), 96)
            for (name, mask) in b.masks {                              // half of each row (rounded down for an odd width)
                let width = mask.shape[1]
                XCTAssertEqual(mask.prunedCount, mask.shape[0] * (width / 2), name)
            }
        }
        for r in report.passes { XCTAssertTrue(r.errorAfterFit!.isFinite, "block \(r.block!) \(r.pass)") }
        XCTAssertFalse(try StructuredFixture.runs(model).contains { !$0.isFinite })
    }

    func testPartialSelectionOfASublayerIsRejectedNamingTheBlock() throws {
        var model = StructuredFixture.model()
        XCTAssertThrowsError(try StructuredFixture.run(&model, [:], targets: ["blocks.1.attn.q", "blocks.1.attn.o"])) { error in
            XCTAssertTrue("\(error)".contains("block 1") && "\(error)".contains("attn.k"), "\(error)")
        }
        let pass = try PruneStructuredPass(options: PruneStructuredPass.defaultOptions)
        XCTAssertThrowsError(try pass.validate(model: StructuredFixture.model(), targets: TargetSelection(targets: ["blocks.*.mlp.up"], ignore: [])))
        XCTAssertNoThrow(try pass.validate(model: StructuredFixture.model(), targets: TargetSelection(targets: ["blocks.*.mlp.*"], ignore: [])))
    }

    func testBadOptionsAreRejectedNamingTheOption() throws {
        let registry = try BuiltinPasses.registry()
        let cases: [([String: String], String)] = [
            (["sparsity": "1"], "sparsity"), (["heads": "odd"], "heads"), (["min_heads": "0"], "min_heads"),
            (["attention_share": "1.5"], "attention_share"), (["channel_multiple": "0"], "channel_multiple"),
            (["taylor_weight": "-1"], "taylor_weight"), (["min_channels": "0"], "min_channels"), (["remove_sublayer_below": "-0.1"], "remove_sublayer_below"),
        ]
        for (values, option) in cases {
            let invocation = PassInvocation(name: PruneStructuredPass.name, options: StructuredFixture.options(values), path: "stages[0].passes[0]")
            XCTAssertThrowsError(try registry.instantiate(invocation)) { error in
                XCTAssertEqual((error as? RecipeError)?.path, "stages[0].passes[0].prune-structured.\(option)", "\(error)")
            }
        }
        let ok = PassInvocation(name: PruneStructuredPass.name, options: StructuredFixture.options(["min_heads": "0", "allow_remove_attention": "true", "attention_share": "null"]))
        XCTAssertNoThrow(try registry.instantiate(ok))
    }

    func testRegistrationTableListsThePassWithItsOptions() throws {
        XCTAssertTrue(PrunePasses.all.contains { $0 == PruneStructuredPass.self })
        let d = try XCTUnwrap(try BuiltinPasses.registry().descriptor("prune-structured"))
        XCTAssertEqual(d.scope, "block")
        XCTAssertEqual(Set(d.options.map(\.key)), ["sparsity", "attention_share", "heads", "min_heads", "allow_remove_attention", "min_channels",
                                                   "channel_multiple", "taylor_weight", "remove_sublayer_below"])
        XCTAssertTrue(d.options.allSatisfy { !$0.help.isEmpty })
        XCTAssertEqual(d.options.first { $0.key == "attention_share" }?.defaultValue, "null")
    }

    func testDocCommentYAMLSampleBuildsThePass() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/LancetPassesPrune/PruneStructured.swift")
        let lines = try String(contentsOf: source, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try XCTUnwrap(lines.firstIndex { $0.contains("```yaml") })
        let end = try XCTUnwrap(lines[(start + 1)...].firstIndex { $0.contains("```") })
        let yaml = lines[(start + 1)..<end].map { $0.replacingOccurrences(of: "/// ", with: "", options: .anchored) }
        // The sample is one list item: the pass's option mapping, then targets, ignore and fit.
        var options: [String: String] = [:]
        var rest: [String: String] = [:]
        for line in yaml.dropFirst() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = String(text[..<colon]), value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("    ") { options[key] = value } else { rest[key] = value }
        }
        XCTAssertEqual(yaml.first?.trimmingCharacters(in: .whitespaces), "- prune-structured:")
        XCTAssertEqual(options, ["sparsity": "0.2", "heads": "kv-groups", "channel_multiple": "32"])
        XCTAssertEqual(Set(rest.keys), ["targets", "ignore", "fit"])
        let pass = try BuiltinPasses.registry().instantiate(PassInvocation(name: "prune-structured", options: StructuredFixture.options(options)))
        guard case let .block(p) = pass, let structured = p as? PruneStructuredPass else { return XCTFail("not a block pass") }
        XCTAssertEqual(structured.headMode, .kvGroups)
        XCTAssertEqual(structured.options.channelMultiple, 32)
    }
}
