import LancetIR
import LancetRuntime
import LancetTensor
import XCTest

final class BlockGradientTests: XCTestCase {
    func testLlamaBlockGradientsMatchFiniteDifferences() throws {
        for (batch, length, pairing) in [(1, 7, RopePairing.adjacent), (2, 5, .halves), (1, 150, .adjacent)] {
            var sizes = TinyLlama.Sizes()
            sizes.hidden = 32; sizes.heads = 4; sizes.kvHeads = 2; sizes.ffn = 40
            let model = TinyLlama.make(sizes, seed: UInt64(length), pairing: pairing)
            var g = SeededGenerator(seed: 3)
            let x = Tensor.randomNormal(shape: [batch * length, 32], std: 1, generator: &g)
            try GradientCheck.check(model.blocks[0], input: x, context: { ExecutionContext(batch: batch, length: length) })
        }
    }

    func testSlidingWindowAttentionGradientsMatchFiniteDifferences() throws {
        var model = TinyLlama.make(seed: 5)
        let i = model.blocks[0].nodeIndex("attn.core")!
        var op = model.blocks[0].nodes[i].op as! AttentionOp
        op.window = 3
        model.blocks[0].nodes[i].op = op
        var g = SeededGenerator(seed: 4)
        let x = Tensor.randomNormal(shape: [9, model.config.hiddenSize], std: 1, generator: &g)
        try GradientCheck.check(model.blocks[0], input: x, context: { ExecutionContext(batch: 1, length: 9) })
    }

    func testLowRankAndBiasedLinearGradientsMatchFiniteDifferences() throws {
        var g = SeededGenerator(seed: 9)
        let block = Block(output: "y", nodes: [
            Node("proj", LinearOp(lowRankPrefix: "proj", hasBias: true), inputs: ["x"], outputs: ["y"]),
        ], parameters: [
            "proj.a": Tensor.randomNormal(shape: [3, 8], std: 0.5, generator: &g),
            "proj.b": Tensor.randomNormal(shape: [8, 3], std: 0.5, generator: &g),
            "proj.bias": Tensor.randomNormal(shape: [8], std: 0.5, generator: &g),
        ])
        try Verifier.verify(block, index: 0, hiddenSize: 8)
        let x = Tensor.randomNormal(shape: [5, 8], std: 1, generator: &g)
        try GradientCheck.check(block, input: x, context: { ExecutionContext(batch: 1, length: 5) })
    }

    func testMixtureOfExpertsGradientsMatchFiniteDifferences() throws {
        for normalize in [true, false] {
            let block = MoEFixture.block(experts: 4, topK: 2, normalize: normalize, shared: true, seed: 11)
            var g = SeededGenerator(seed: 12)
            let x = Tensor.randomNormal(shape: [6, MoEFixture.hidden], std: 1, generator: &g)
            // Small steps keep every token's top-k choice unchanged inside the finite difference.
            try GradientCheck.check(block, input: x, context: { ExecutionContext(batch: 1, length: 6) }, epsilon: 2e-3, tolerance: 3e-2)
        }
    }

    /// CMoE's SwiGLU router (|u·x · silu(g·x)|) differentiated through softmax weights; with unit weights the router
    /// gets no gradient and the experts' gradients still match.
    func testSwiGLURouterGradientsMatchFiniteDifferences() throws {
        for weighting in MoEWeighting.allCases {
            let block = MoEFixture.block(experts: 4, topK: 2, normalize: true, shared: true, seed: 13, router: .swiglu, weighting: weighting)
            var g = SeededGenerator(seed: 14)
            let x = Tensor.randomNormal(shape: [6, MoEFixture.hidden], std: 1, generator: &g)
            try GradientCheck.check(block, input: x, context: { ExecutionContext(batch: 1, length: 6) }, epsilon: 2e-3, tolerance: 3e-2)
        }
    }
}

enum MoEFixture {
    static let hidden = 12

    static func block(experts: Int, topK: Int, normalize: Bool, shared: Bool, seed: UInt64, router: MoERouter = .linear,
                      weighting: MoEWeighting = .softmax) -> Block {
        var g = SeededGenerator(seed: seed)
        func w(_ r: Int, _ c: Int) -> Tensor { Tensor.randomNormal(shape: [r, c], std: 1 / Float(c).squareRoot(), generator: &g) }
        let op = MoEOp(prefix: "moe", experts: experts, topK: topK, normalizeTopK: normalize, hasSharedExpert: shared, router: router, weighting: weighting)
        var params: [String: Tensor] = [:]
        for name in op.routerNames { params[name] = w(experts, hidden) }
        for e in 0..<experts {
            let width = 8 + 2 * e
            params["moe.experts.\(e).gate.weight"] = w(width, hidden)
            params["moe.experts.\(e).up.weight"] = w(width, hidden)
            params["moe.experts.\(e).down.weight"] = w(hidden, width)
        }
        if shared {
            params["moe.shared.gate.weight"] = w(6, hidden)
            params["moe.shared.up.weight"] = w(6, hidden)
            params["moe.shared.down.weight"] = w(hidden, 6)
        }
        return Block(output: "y", nodes: [
            Node("moe", op, inputs: ["x"], outputs: ["moe_out"]),
            Node("residual", AddOp(), inputs: ["x", "moe_out"], outputs: ["y"]),
        ], parameters: params)
    }
}
