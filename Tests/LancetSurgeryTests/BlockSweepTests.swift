import Lancet
@testable import LancetSurgery
import XCTest

/// The sweep's memory-saving paths compute what the plain ones do: `advance` writes the same outputs as
/// `run` over the inputs, and the errors measured a few windows at a time equal the error of the whole
/// output tensor, to the last bit.
final class BlockSweepTests: XCTestCase {
    let length = 16

    /// A tiny model's first two blocks, an input tensor of 7 windows (not a multiple of the 3 windows per
    /// call), and a cut copy of block 0 (half its weights zeroed) with its teacher outputs.
    func fixture() throws -> (dense: Block, cut: Block, inputs: Tensor, teacher: Tensor, sweep: BlockSweep) {
        let model = TinyLlama.make(seed: 11)
        var g = SeededGenerator(seed: 3)
        let tokens = (0..<(7 * length)).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) }
        let inputs = try ModelRunner(model: model).embed(tokens)
        let sweep = BlockSweep(windowsPerCall: 3, length: length)
        let dense = model.blocks[0]
        var cut = dense
        for name in cut.parameters.keys where name.hasSuffix(".weight") && cut.parameters[name]!.rank == 2 {
            cut.parameters[name]!.withUnsafeMutableBufferPointer { p in for i in stride(from: 0, to: p.count, by: 2) { p[i] = 0 } }
        }
        return (dense, cut, inputs, try sweep.run(dense, index: 0, inputs: inputs), sweep)
    }

    func testAdvanceWritesTheOutputsOfRunOverTheInputsAndMeasuresTheSameError() throws {
        let f = try fixture()
        let expected = try f.sweep.run(f.cut, index: 0, inputs: f.inputs)
        var x = f.inputs
        let error = try f.sweep.advance(f.cut, index: 0, inputs: &x, teacher: f.teacher)
        XCTAssertEqual(x, expected)
        XCTAssertNotEqual(x, f.inputs)                                // the copy the caller kept is untouched
        XCTAssertEqual(error, expected.relativeError(to: f.teacher))
        XCTAssertGreaterThan(error, 0)
        XCTAssertEqual(try f.sweep.error(f.cut, index: 0, inputs: f.inputs, teacher: f.teacher), error)
    }

    func testErrorsAgainstAPartialTeacherCoverItsWindowsOnly() throws {
        let f = try fixture()
        let partial = f.teacher.slicingRows(0..<(4 * length))          // 4 windows: one call and a part of the next
        let outputs = try f.sweep.run(f.cut, index: 0, inputs: f.inputs)
        let expected = outputs.slicingRows(0..<(4 * length)).relativeError(to: partial)
        XCTAssertEqual(try f.sweep.error(f.cut, index: 0, inputs: f.inputs, teacher: partial), expected)
        var x = f.inputs
        XCTAssertEqual(try f.sweep.advance(f.cut, index: 0, inputs: &x, teacher: partial), expected)
        XCTAssertEqual(x, outputs)                                    // every window advanced all the same
    }

    func testRunPairedHandsBothBlocksValuesAndMeasuresTheSecondBlocksError() throws {
        let f = try fixture()
        var calls = 0, rows = 0
        let error = try f.sweep.runPaired(f.dense, f.cut, index: 0, inputs: f.inputs, teacher: f.teacher, capture: ["act"]) { _, denseValues, cutValues in
            calls += 1
            rows += cutValues["act"]!.shape[0]
            XCTAssertEqual(denseValues["act"]!.shape, cutValues["act"]!.shape)
            XCTAssertNotEqual(denseValues["act"], cutValues["act"])
        }
        XCTAssertEqual(calls, 3)
        XCTAssertEqual(rows, 7 * length)
        XCTAssertEqual(error, try f.sweep.run(f.cut, index: 0, inputs: f.inputs).relativeError(to: f.teacher))
    }
}
