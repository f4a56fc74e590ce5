import Lancet
import XCTest

final class GlobTests: XCTestCase {
    func testStarMatchesAcrossDotsAndQuestionMarkMatchesOneCharacter() {
        XCTAssertTrue(Glob.matches("blocks.*.mlp.*", "blocks.3.mlp.gate"))
        XCTAssertTrue(Glob.matches("blocks.0.*", "blocks.0.attn.q.weight"))
        XCTAssertFalse(Glob.matches("blocks.1.*", "blocks.10.attn.q"))
        XCTAssertTrue(Glob.matches("blocks.?.attn.*", "blocks.7.attn.o"))
        XCTAssertFalse(Glob.matches("blocks.?.attn.*", "blocks.17.attn.o"))
        XCTAssertTrue(Glob.matches("*", ""))
        XCTAssertFalse(Glob.matches("a", ""))
    }

    func testSelectionAppliesIgnoreAfterTargets() {
        let s = TargetSelection(targets: ["blocks.*.mlp.*", "blocks.*.attn.*"], ignore: ["blocks.0.*"])
        XCTAssertFalse(s.selects(block: 0, node: "mlp.up"))
        XCTAssertTrue(s.selects(block: 1, node: "mlp.up"))
        XCTAssertFalse(s.selects(block: 1, node: "mlp_norm"))
        let model = TinyLlama.make()
        XCTAssertEqual(s.linears(in: model.blocks[1], index: 1).map(\.node.name), ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"])
        XCTAssertEqual(TargetSelection(targets: ["blocks.9.*"], ignore: []).unmatchedPatterns(in: model), ["blocks.9.*"])
    }
}
