import LancetIR
import LancetRuntime
import LancetTensor
import XCTest

/// Directional finite-difference checks: for a random direction v, (L(θ+εv) − L(θ−εv)) / 2ε must match ⟨∇L, v⟩.
/// The loss is ⟨block(x), R⟩ for a fixed random R, so ∂L/∂output = R.
enum GradientCheck {
    static func loss(_ block: Block, _ x: Tensor, _ r: Tensor, _ context: () -> ExecutionContext) throws -> Double {
        let y = try BlockExecutor.forward(block, input: x, context: context()).output
        return y.withUnsafeBufferPointer { yp in r.withUnsafeBufferPointer { rp in
            (0..<yp.count).reduce(0.0) { $0 + Double(yp[$1]) * Double(rp[$1]) }
        }}
    }

    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in (0..<ap.count).reduce(0.0) { $0 + Double(ap[$1]) * Double(bp[$1]) } } }
    }

    static func axpy(_ x: Tensor, _ v: Tensor, _ e: Float) -> Tensor { Elementwise.zip(x, v) { $0 + e * $1 } }

    /// Checks the input gradient and every parameter gradient of `block`; returns the worst relative error.
    static func check(_ block: Block, input x: Tensor, context: @escaping () -> ExecutionContext, seed: UInt64 = 7,
                      epsilon: Float = 1e-2, file: StaticString = #filePath, line: UInt = #line, tolerance: Double = 2e-2) throws {
        var g = SeededGenerator(seed: seed)
        let fwd = try BlockExecutor.forward(block, input: x, context: context(), keepValues: true)
        let r = Tensor.randomNormal(shape: fwd.output.shape, std: 1, generator: &g)
        let grads = try BlockExecutor.backward(block, values: fwd.values, outputGradient: r, context: context())

        let v = Tensor.randomNormal(shape: x.shape, std: 1, generator: &g)
        let fd = (try loss(block, axpy(x, v, epsilon), r, context) - loss(block, axpy(x, v, -epsilon), r, context)) / (2 * Double(epsilon))
        let analytic = dot(grads.input, v)
        XCTAssertEqual(fd, analytic, accuracy: tolerance * max(1, abs(fd)), "input gradient", file: file, line: line)

        for name in block.parameters.keys.sorted() {
            guard let gp = grads.parameters[name] else { XCTFail("no gradient for \(name)", file: file, line: line); continue }
            let p = block.parameters[name]!
            let dir = Tensor.randomNormal(shape: p.shape, std: 1, generator: &g)
            var plus = block, minus = block
            plus.parameters[name] = axpy(p, dir, epsilon)
            minus.parameters[name] = axpy(p, dir, -epsilon)
            let fdp = (try loss(plus, x, r, context) - loss(minus, x, r, context)) / (2 * Double(epsilon))
            XCTAssertEqual(fdp, dot(gp, dir), accuracy: tolerance * max(1, abs(fdp)), "gradient of \(name)", file: file, line: line)
        }
    }
}
