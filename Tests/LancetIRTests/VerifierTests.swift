import LancetIR
import LancetTensor
import XCTest

final class VerifierTests: XCTestCase {
    func expectFailure(_ model: Model, block: Int?, node: String?, containing text: String, line: UInt = #line) {
        XCTAssertThrowsError(try Verifier.verify(model), line: line) { e in
            guard let v = e as? VerifierError else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(v.block, block, "\(v)", line: line)
            XCTAssertEqual(v.node, node, "\(v)", line: line)
            XCTAssertTrue(v.description.contains(text), "\(v)", line: line)
        }
    }

    func testTinyModelVerifies() throws {
        try Verifier.verify(TinyLlama.make())
    }

    func testVerifierNamesBlockAndNodeOfAShapeMismatch() {
        var m = TinyLlama.make()
        m.blocks[1].parameters["mlp.up.weight"] = Tensor(zeros: [95, 48])
        expectFailure(m, block: 1, node: "mlp.mul", containing: "equal width")
        m = TinyLlama.make()
        m.blocks[0].parameters["attn.q.weight"] = Tensor(zeros: [48, 47])
        expectFailure(m, block: 0, node: "attn.q", containing: "[48, 47]")
    }

    func testVerifierRejectsHeadCountsThatDoNotDivide() {
        var m = TinyLlama.make()
        let i = m.blocks[0].nodeIndex("attn.core")!
        var op = m.blocks[0].nodes[i].op as! AttentionOp
        op.kvHeads = 3
        m.blocks[0].nodes[i].op = op
        expectFailure(m, block: 0, node: "attn.core", containing: "must divide")
    }

    func testVerifierRejectsUseBeforeDefinitionAndDoubleDefinition() {
        var m = TinyLlama.make()
        m.blocks[0].nodes.swapAt(0, 1)
        expectFailure(m, block: 0, node: "attn.q", containing: "not defined before")
        m = TinyLlama.make()
        m.blocks[0].nodes[2].outputs = ["q"]
        expectFailure(m, block: 0, node: "attn.k", containing: "defined twice")
    }

    func testVerifierRejectsUnusedParametersAndBadMasks() {
        var m = TinyLlama.make()
        m.blocks[0].parameters["stale.weight"] = Tensor(zeros: [2])
        expectFailure(m, block: 0, node: nil, containing: "not used")
        m = TinyLlama.make()
        var mask = Mask(keepingAllOf: [96, 48])
        mask.keep[5] = 0
        m.blocks[1].masks["mlp.up.weight"] = mask
        expectFailure(m, block: 1, node: nil, containing: "non-zero at element 5")
        m.blocks[1].setMasked("mlp.up.weight", weight: m.blocks[1].parameters["mlp.up.weight"]!, mask: mask)
        XCTAssertNoThrow(try Verifier.verify(m))
    }

    func testBlocksWithoutASubLayerVerifyAndRun() throws {
        var m = TinyLlama.make()
        let attention = LlamaBlock.attentionSizes(of: m.blocks[0])!
        var params = m.blocks[0].parameters.filter { $0.key.hasPrefix("attn") }
        m.blocks[0] = LlamaBlock.make(attention: attention, hasMLP: false, epsilon: 1e-5, rope: m.config.rope, parameters: params)
        params = m.blocks[1].parameters.filter { $0.key.hasPrefix("mlp") }
        m.blocks[1] = LlamaBlock.make(attention: nil, hasMLP: true, epsilon: 1e-5, rope: m.config.rope, parameters: params)
        try Verifier.verify(m)
        XCTAssertTrue(BlockPrinter.render(m.blocks[1], index: 1).contains("mlp.gate.weight [96, 48]"))
    }
}
