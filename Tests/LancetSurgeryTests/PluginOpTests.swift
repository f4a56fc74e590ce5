import Foundation
import Lancet
import XCTest

/// An IR op from a plugin (`prompt-channel-gate` of `Examples/ExamplePass`): registered when the plugin loads, it
/// survives an archive round trip, and the channel choice it stores in the sequence's state at prefill is the one
/// the decode steps use.
final class PluginOpTests: XCTestCase {
    private func loadPlugin() throws -> PluginInfo {
        #if !os(Linux)
        throw XCTSkip("plugin loading is implemented and tested on Linux")
        #else
        return try PluginLoader.load(path: try ExamplePluginBuild.library.get(), into: PassRegistry())
        #endif
    }

    /// A tiny model whose block 1 gates its FFN channels with the plugin's op before the down projection.
    private func gatedModel(keep: Int) throws -> Model {
        var model = TinyLlama.make(seed: 8)
        let gate = try OpRegistry.make(kind: "prompt-channel-gate", attributes: ["keep": .int(keep)])
        var block = model.blocks[1]
        let down = try XCTUnwrap(block.nodeIndex("mlp.down"))
        block.nodes.insert(Node("mlp.channel_gate", gate, inputs: ["act"], outputs: ["act_gated"]), at: down)
        block.nodes[down + 1].inputs = ["act_gated"]
        model.blocks[1] = block
        try Verifier.verify(model)
        return model
    }

    func testThePluginsOpIsRegisteredWhenItLoads() throws {
        let info = try loadPlugin()
        XCTAssertEqual(info.ops, ["prompt-channel-gate"])
        XCTAssertEqual(OpRegistry.type(of: "prompt-channel-gate").map { "\($0)" }, "PromptChannelGate")
        XCTAssertThrowsError(try OpRegistry.make(kind: "prompt-channel-gate", attributes: ["keep": .int(0)])) {
            XCTAssertTrue("\($0)".contains("keep must be at least 1"), "\($0)")
        }
    }

    func testAPluginOpSurvivesAnArchiveRoundTrip() throws {
        _ = try loadPlugin()
        let model = try gatedModel(keep: 24)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plugin-op-\(getpid()).lancet").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelArchive.write(model, to: path)
        let back = try ModelArchive.read(path).model
        let node = try XCTUnwrap(back.blocks[1].node("mlp.channel_gate"))
        XCTAssertEqual(node.kind, "prompt-channel-gate")
        XCTAssertEqual(node.op.attributes, ["keep": .int(24)])
        XCTAssertEqual(node.inputs, ["act"])
        try Verifier.verify(back)
        let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let context = ExecutionContext(batch: 1, length: tokens.count)
        XCTAssertEqual(try ModelRunner(model: back).hiddenStates(tokens, context: context),
                       try ModelRunner(model: model).hiddenStates(tokens, context: ExecutionContext(batch: 1, length: tokens.count)))
    }

    func testTheChoiceMadeAtPrefillIsTheOneEveryDecodeStepUses() throws {
        _ = try loadPlugin()
        let keep = 24
        let model = try gatedModel(keep: keep)
        let runner = ModelRunner(model: model)
        let prompt: [Int32] = [7, 3, 11, 2, 9, 5, 1, 8]
        let cache = KVCache(capacity: 16)
        _ = try runner.nextTokenLogits(prompt, cache: cache)
        let stored = try XCTUnwrap(cache.state.value(block: 1, node: "mlp.channel_gate") as? [Float])
        XCTAssertEqual(stored.filter { $0 == 1 }.count, keep)
        XCTAssertEqual(stored.filter { $0 == 0 }.count, stored.count - keep)
        // The prompt's own activations choose it: the channels of largest mean |act| over the prompt's rows.
        let context = ExecutionContext(batch: 1, length: prompt.count)
        var x = try runner.embed(prompt)
        x = try BlockExecutor.forward(model.blocks[0], index: 0, input: x, context: context).output
        let act = try XCTUnwrap(BlockExecutor.forward(model.blocks[1], index: 1, input: x, context: context, capture: ["act"]).values["act"])
        var energy = [Double](repeating: 0, count: act.shape[1])
        for r in 0..<act.shape[0] { for c in 0..<act.shape[1] { energy[c] += Double(abs(act[r, c])) } }
        let threshold = energy.sorted(by: >)[keep - 1]
        XCTAssertEqual(stored, energy.map { $0 >= threshold ? 1 : 0 })

        // Decode steps keep it, and read it: the same steps with another stored choice give other logits.
        let step1 = try runner.nextTokenLogits([4], startPosition: prompt.count, cache: cache)
        _ = try runner.nextTokenLogits([6], startPosition: prompt.count + 1, cache: cache)
        XCTAssertEqual(cache.state.value(block: 1, node: "mlp.channel_gate") as? [Float], stored)
        let other = KVCache(capacity: 16)
        _ = try runner.nextTokenLogits(prompt, cache: other)
        other.state.set(stored.map { 1 - $0 }, block: 1, node: "mlp.channel_gate")
        let otherStep1 = try runner.nextTokenLogits([4], startPosition: prompt.count, cache: other)
        XCTAssertNotEqual(step1, otherStep1)
        let same = KVCache(capacity: 16)
        _ = try runner.nextTokenLogits(prompt, cache: same)
        XCTAssertEqual(try runner.nextTokenLogits([4], startPosition: prompt.count, cache: same), step1)

        // Decoding into a sequence whose prefill never ran is an error, not a silent choice.
        let gate = try XCTUnwrap(model.blocks[1].node("mlp.channel_gate")).op
        let decode = ExecutionContext(batch: 1, length: 1, startPosition: 3, cache: KVCache(capacity: 16))
        decode.blockIndex = 1
        decode.nodeName = "mlp.channel_gate"
        XCTAssertThrowsError(try gate.forward([Tensor(zeros: [1, stored.count])], parameters: model.blocks[1], context: decode)) {
            XCTAssertTrue("\($0)".contains("without the prompt's channel choice"), "\($0)")
        }
    }

    /// A test op that claims a built-in kind.
    struct FakeLinear: Op {
        static let kind = "linear"
        init() {}
        init(attributes: [String: OpAttribute]) {}
        var parameterNames: [String] { [] }
        var attributes: [String: OpAttribute] { [:] }
        func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] { inputs }
        func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] { inputs }
        func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                      context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] { outputGradients }
        func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost { OpCost() }
    }

    func testAnOpKindThatIsTakenIsRefused() {
        XCTAssertEqual(OpRegistry.conflict(with: [FakeLinear.self]), "op kind 'linear' is already registered")
        XCTAssertThrowsError(try OpRegistry.register(FakeLinear.self))
        XCTAssertNil(OpRegistry.conflict(with: [LinearOp.self]), "registering the same type again is harmless")
        XCTAssertThrowsError(try OpRegistry.make(kind: "no-such-op", attributes: [:])) { XCTAssertTrue("\($0)".contains("--plugin"), "\($0)") }
    }
}
