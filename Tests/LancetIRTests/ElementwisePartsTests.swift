import LancetIR
import LancetTensor
import XCTest

/// The elementwise ops split a large tensor over the cores (`forEachPart`); every element must come out as the
/// serial kernel computes it, whatever the split: a prefill-sized call (2 sequences × 700 tokens, widths that do not
/// divide into the parts evenly) against the kernels run over the whole tensor on one thread.
final class ElementwisePartsTests: XCTestCase {
    let (batch, length, width) = (2, 700, 200)

    func inputs(_ seed: UInt64) -> (Tensor, Tensor) {
        var g = SeededGenerator(seed: seed)
        return (Tensor.randomNormal(shape: [batch * length, width], std: 2, generator: &g),
                Tensor.randomNormal(shape: [batch * length, width], std: 2, generator: &g))
    }

    func testLargeCallsAreSplitAndGiveTheSerialKernelsValuesBitForBit() throws {
        XCTAssertGreaterThanOrEqual(batch * length * width, 2 * elementwiseGrain, "the fixture must be split")
        let (a, b) = inputs(21)
        let context = ExecutionContext(batch: batch, length: length)
        let empty = Block(output: "y", nodes: [], parameters: [:])

        var silu = Tensor(uninitializedShape: a.shape)
        a.withUnsafeBufferPointer { x in silu.withUnsafeMutableBufferPointer { LancetTensor.silu(x.baseAddress!, count: x.count, out: $0.baseAddress!) } }
        XCTAssertEqual(try SiLUOp().forward([a], parameters: empty, context: context)[0], silu)
        XCTAssertEqual(try MulOp().forward([a, b], parameters: empty, context: context)[0], Elementwise.zip(a, b, *))
        XCTAssertEqual(try AddOp().forward([a, b], parameters: empty, context: context)[0], Elementwise.zip(a, b, +))

        var g = SeededGenerator(seed: 22)
        let weight = Tensor(shape: [width], (0..<width).map { _ in 1 + 0.1 * g.nextNormal() })
        var norm = Tensor(uninitializedShape: a.shape)
        a.withUnsafeBufferPointer { x in weight.withUnsafeBufferPointer { w in norm.withUnsafeMutableBufferPointer {
            rmsNorm(x.baseAddress!, weight: w.baseAddress!, rows: batch * length, dim: width, eps: 1e-5, out: $0.baseAddress!)
        }}}
        let normBlock = Block(output: "y", nodes: [], parameters: ["norm.weight": weight])
        XCTAssertEqual(try RMSNormOp(weight: "norm.weight", epsilon: 1e-5).forward([a], parameters: normBlock, context: context)[0], norm)

        let config = RopeConfig(theta: 10000, rotaryDimensions: 40, pairing: .halves)
        var rotated = a
        let positions = (0..<batch).flatMap { _ in (0..<length).map(Int32.init) }
        rotated.withUnsafeMutableBufferPointer { x in positions.withUnsafeBufferPointer { p in config.inverseFrequencies.withUnsafeBufferPointer { f in
            rope(x: x.baseAddress!, tokens: batch * length, heads: 5, headDim: 40, rowStride: width, positions: p.baseAddress!,
                 inverseFrequencies: f.baseAddress!, rotaryDim: 40, pairing: .halves)
        }}}
        XCTAssertEqual(try RopeOp(heads: 5, headDimensions: 40, config: config).forward([a], parameters: empty, context: context)[0], rotated)
    }
}
