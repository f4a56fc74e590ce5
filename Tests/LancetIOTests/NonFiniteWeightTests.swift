import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// NaN and ±infinity in a weight are refused at load, naming the tensor (GGUF and Hugging Face); the
/// `.report` option loads the model and lists them instead.
final class NonFiniteWeightTests: XCTestCase {
    typealias S = LoaderTestSupport

    /// The vectorised scan against a plain loop, for lengths around the 16-lane width, every position.
    func testTheScanFindsEveryNonFiniteValueAtEveryPositionAndNoFiniteOne() {
        var rng = TestRNG(seed: 3)
        let specials: [Float] = [.nan, -.nan, .signalingNaN, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001)]
        let finite: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 0, 1]
        for n in [0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 100] {
            var base = (0..<n).map { _ in Float.random(in: -1e30...1e30, using: &rng) }
            for i in 0..<n { base[i] = i % 7 == 0 ? finite[i % finite.count] : base[i] }
            base.withUnsafeBufferPointer { XCTAssertFalse(NonFiniteWeightCheck.containsNonFinite($0), "n \(n) finite") }
            for i in 0..<n {
                for special in specials {
                    var a = base
                    a[i] = special
                    a.withUnsafeBufferPointer { XCTAssertTrue(NonFiniteWeightCheck.containsNonFinite($0), "n \(n) at \(i): \(special)") }
                }
            }
        }
    }

    func testAGGUFWithANaNWeightIsRefusedNamingTheTensor() throws {
        let source = temporary(try S.tinyGGUF())
        for (name, value, what) in [("blk.1.attn_q.weight", Float.nan, "3 NaN"), ("output_norm.weight", .infinity, "3 infinite"),
                                    ("token_embd.weight", -.infinity, "3 infinite")] {
            let bad = temporary(try S.poisonGGUF(source, tensor: name, value: value, elements: [5, 6, 40]))
            assertLoadError(try ModelLoader.load(bad), "tensor '\(name)' holds \(what) of its", "(the first at index 5)", "non-finite weights")
            let loaded = try ModelLoader.load(bad, options: LoadOptions(nonFiniteWeights: .report))
            XCTAssertEqual(loaded.nonFiniteTensors.map(\.name), [name])
            XCTAssertEqual(loaded.nonFiniteTensors.first?.firstIndex, 5)
            XCTAssertEqual(loaded.nonFiniteTensors.first.map { $0.nanCount + $0.infinityCount }, 3)
        }
        XCTAssertEqual(try ModelLoader.load(source, options: LoadOptions(nonFiniteWeights: .report)).nonFiniteTensors, [])
    }

    /// The case: every element of one q_proj is NaN.
    func testAHuggingFaceFolderWhoseQProjIsAllNaNIsRefusedNamingTheTensor() throws {
        let folder = temporary(try S.tinyFolder())
        let clean = try ModelLoader.load(folder)
        let name = "model.layers.1.self_attn.q_proj.weight"
        try S.poisonSafetensors(folder, tensor: name, value: .nan)
        assertLoadError(try ModelLoader.load(folder), "tensor '\(name)' holds 4096 NaN of its 4096 values", "model.safetensors")
        let loaded = try ModelLoader.load(folder, options: LoadOptions(nonFiniteWeights: .report))
        XCTAssertEqual(loaded.nonFiniteTensors.map(\.name), [name])
        XCTAssertEqual(loaded.model.blocks[0].parameters, clean.blocks[0].parameters, "the other weights load unchanged")
    }

    func testValidModelsLoadBitIdenticallyThroughTheCheckedPath() throws {
        let model = TinyLlama.make(S.sizes, seed: 11, pairing: .adjacent)
        let path = temporary(try S.tinyGGUF(seed: 11))
        let back = try ModelLoader.load(path)
        XCTAssertEqual(back.embedding, model.embedding)
        for (a, b) in zip(back.blocks, model.blocks) { XCTAssertEqual(a.parameters, b.parameters) }
    }
}
