import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// F16 and BF16 weights stay 16-bit at load: the loaded tensors hold the file's values and take Float memory only
/// when something reads them as Float; a runtime multiplying by 16-bit weights of the same format never does, and
/// every result is the one of the eagerly widened model, bit for bit.
final class HalfStoredWeightsTests: XCTestCase {
    typealias S = LoaderTestSupport

    /// A tiny untied model exported as a GGUF of `type`.
    private func gguf(_ type: GGUFFileType, seed: UInt64) throws -> String {
        var sizes = S.sizes
        sizes.tied = false
        let path = temporary(GGUFTestSupport.temporaryPath("half.gguf"))
        try GGUFExporter.write(TinyLlama.make(sizes, seed: seed, pairing: .adjacent), to: path, type: type)
        return path
    }

    /// The model's matrices: the embedding, the head and every rank-2 block parameter, by name.
    private func matrices(_ model: Model) -> [(String, Tensor)] {
        var all = [("embedding", model.embedding), ("head", model.head)]
        for (i, b) in model.blocks.enumerated() {
            for name in b.parameters.keys.sorted() where b.parameters[name]!.rank == 2 { all.append(("\(i).\(name)", b.parameters[name]!)) }
        }
        return all
    }

    /// The same model with every tensor copied into Float memory of its own (what loading did before).
    private func widenedCopy(_ model: Model) -> Model {
        func copy(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, t.scalars) }
        var m = model
        m.embedding = copy(m.embedding)
        m.outputHead = m.outputHead.map(copy)
        for i in m.blocks.indices { m.blocks[i].parameters = m.blocks[i].parameters.mapValues(copy) }
        return m
    }

    private func logits(_ model: Model, _ precision: WeightPrecision) throws -> [Float] {
        let ids = ExportTestSupport.prompt
        let runner = ModelRunner(model: model, precision: precision)
        var all = try runner.logits(ids, context: ExecutionContext(batch: 1, length: ids.count)).scalars
        let cache = KVCache(capacity: ids.count)
        for (p, id) in ids.enumerated() { all += try runner.nextTokenLogits([id], startPosition: p, cache: cache) }
        return all
    }

    func testA16BitGGUFRunsIn16BitsWithoutWideningAndGivesTheWidenedModelsLogits() throws {
        for (type, format) in [(GGUFFileType.f16, HalfFormat.f16), (.bf16, .bf16)] {
            let path = try gguf(type, seed: 21)
            let model = try ModelLoader.load(path)
            for (name, t) in matrices(model) {
                XCTAssertEqual(t.halfSource?.format, format, "\(type) \(name): loaded as the file's 16-bit values")
                XCTAssertFalse(t.holdsFloats, "\(type) \(name): not widened at load (nor by the non-finite check)")
            }
            let prefillAndDecode = try logits(model, format == .f16 ? .f16 : .bf16)
            for (name, t) in matrices(model) { XCTAssertFalse(t.holdsFloats, "\(type) \(name): the 16-bit runtime did not widen it") }
            let eager = widenedCopy(try ModelLoader.load(path))
            XCTAssertEqual(prefillAndDecode, try logits(eager, format == .f16 ? .f16 : .bf16), "\(type): same logits as the widened model")
            // Float runs widen on first use and are exact: the widened model's logits, bit for bit.
            XCTAssertEqual(try logits(model, .f32), try logits(eager, .f32), "\(type): Float logits")
            for (name, t) in matrices(model) {
                // The untied embedding is only ever read a row at a time, from its 16-bit values.
                XCTAssertEqual(t.holdsFloats, name != "embedding", "\(type) \(name): a Float run reads every weight matrix as Float")
            }
        }
    }

    /// A mixture-of-experts F16 GGUF: each expert, a slab of the file's stacked expert tensor, stays 16-bit.
    func testTheExpertsOfAnF16MixtureStay16Bit() throws {
        var model = TinyLlama.make(seed: 1)
        for i in 0..<2 { ExportMoETests.makeMoE(&model, block: i, widths: [32, 32, 32, 32], seed: UInt64(i)) }
        let path = temporary(GGUFTestSupport.temporaryPath("moe-f16.gguf"))
        try GGUFExporter.write(model, to: path, type: .f16)
        let back = try ModelLoader.load(path)
        let experts = back.blocks[1].parameters.filter { $0.key.contains("experts.") && $0.value.rank == 2 }
        XCTAssertEqual(experts.count, 12, "4 experts × gate, up, down: \(back.blocks[1].parameters.keys.sorted())")
        XCTAssertTrue(experts.values.allSatisfy { $0.halfSource?.format == .f16 })
        let got = try logits(back, .f16)
        // The exporter writes the routers in F32; every 16-bit matrix stays 16-bit.
        let stored = matrices(back).filter { $0.1.halfSource != nil }
        XCTAssertEqual(stored.count, matrices(back).filter { !$0.0.contains("router") }.count)
        XCTAssertEqual(stored.filter { $0.1.holdsFloats }.map(\.0), [], "no 16-bit matrix was widened")
        XCTAssertEqual(got, try logits(widenedCopy(try ModelLoader.load(path)), .f16))
        XCTAssertEqual(try logits(back, .f32), try logits(widenedCopy(try ModelLoader.load(path)), .f32))
    }

    /// An F16 model run with bf16 weights converts its 16-bit values without widening the model.
    func testAnF16GGUFRunWithBF16WeightsConvertsWithoutWidening() throws {
        let path = try gguf(.f16, seed: 22)
        let model = try ModelLoader.load(path)
        let got = try logits(model, .bf16)
        XCTAssertTrue(matrices(model).allSatisfy { !$0.1.holdsFloats })
        XCTAssertEqual(got, try logits(widenedCopy(try ModelLoader.load(path)), .bf16))
    }

    /// NaN in an F16 tensor is found in its 16-bit values: refused with the tensor's name, or reported without
    /// widening anything.
    func testNonFinite16BitValuesAreFoundWithoutWidening() throws {
        let source = try gguf(.f16, seed: 23)
        let name = "blk.1.ffn_up.weight"
        for (value, what) in [(Float.nan, "3 NaN"), (.infinity, "3 infinite"), (-70000, "3 infinite")] {
            let bad = temporary(try S.poisonGGUF(source, tensor: name, value: value, elements: [2, 17, 33]))
            XCTAssertThrowsError(try ModelLoader.load(bad)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("tensor '\(name)' holds \(what) of its") && text.contains("(the first at index 2)"), text)
            }
            let loaded = try ModelLoader.load(bad, options: LoadOptions(nonFiniteWeights: .report))
            XCTAssertEqual(loaded.nonFiniteTensors.map(\.name), [name])
            XCTAssertTrue(matrices(loaded.model).allSatisfy { !$0.1.holdsFloats }, "the check read the 16-bit values")
        }
        XCTAssertEqual(try ModelLoader.load(source, options: LoadOptions(nonFiniteWeights: .report)).nonFiniteTensors, [])
    }

    /// 16-bit values at odd addresses (a file with `general.alignment` 1) cannot be used in place: they are widened
    /// at load, to the same values.
    func testMisalignedValuesAreWidenedAtLoadToTheSameValues() throws {
        let source = try gguf(.f16, seed: 25)
        let aligned = try ModelLoader.load(source)
        var padding = ""
        for _ in 0..<4 {
            let original = try GGUFFile(path: source)
            var writer = GGUFWriter(metadata: original.metadataEntries.filter { $0.key != "general.alignment" }.map { ($0.key, $0.value) }
                                    + [("general.alignment", .uint32(1)), ("test.padding", .string(padding))])
            for info in original.tensors { try writer.addRaw(info, of: original) }
            let path = temporary(GGUFTestSupport.temporaryPath("unaligned.gguf"))
            try writer.write(to: path)
            let file = try GGUFFile(path: path)
            let odd = file.tensors.filter { $0.type == .f16 && (file.dataOffset + $0.offset) % 2 == 1 }.map(\.name)
            padding += "x"
            guard !odd.isEmpty else { continue }
            let model = try ModelLoader.load(path)
            XCTAssertEqual(odd.count, file.tensors.filter { $0.type == .f16 }.count, "every F16 tensor (even byte sizes) follows the first")
            XCTAssertEqual(model.embedding, aligned.embedding)
            for (a, b) in zip(model.blocks, aligned.blocks) { XCTAssertEqual(a.parameters, b.parameters) }
            XCTAssertTrue(matrices(model).allSatisfy { $0.1.halfSource == nil }, "every F16 tensor starts at an odd byte here")
            return
        }
        XCTFail("no padding gave odd tensor offsets")
    }

    /// A BF16 Hugging Face folder (the common way models are published): every matrix loads as the file's bf16
    /// values and a bf16 run widens none of them.
    func testABF16SafetensorsFolderKeepsItsValues() throws {
        let folder = temporary(GGUFTestSupport.temporaryPath("half-hf"))
        try HuggingFaceExporter.write(TinyLlama.make(S.sizes, seed: 24), to: folder, dtype: .bf16)
        let model = try ModelLoader.load(folder)
        for (name, t) in matrices(model) { XCTAssertEqual(t.halfSource?.format, .bf16, name) }
        let got = try logits(model, .bf16)
        XCTAssertEqual(matrices(model).filter { $0.1.holdsFloats }.map(\.0), [])
        XCTAssertEqual(got, try logits(widenedCopy(try ModelLoader.load(folder)), .bf16))
    }
}
