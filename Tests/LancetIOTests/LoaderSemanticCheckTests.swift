import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// The GGUF importer and the Hugging Face config apply the same checks (`LlamaHyperparameters`): a
/// value one refuses, the other refuses too, naming the field in its own vocabulary and the value.
final class LoaderSemanticCheckTests: XCTestCase {
    typealias S = LoaderTestSupport

    private func gguf(_ edits: ((inout [(key: String, value: GGUFValue)]) -> Void)...) throws -> String {
        let source = temporary(try S.tinyGGUF())
        return temporary(try S.rewrite(source) { entries in for edit in edits { edit(&entries) } })
    }

    func testTheUneditedFilesLoad() throws {
        XCTAssertNoThrow(try ModelLoader.load(try gguf({ _ in })))
        XCTAssertNoThrow(try ModelLoader.load(temporary(try S.tinyFolder())))
    }

    func testGGUFRefusesBadEpsilonRopeBaseAndContext() throws {
        let cases: [(String, GGUFValue, String)] = [
            ("llama.attention.layer_norm_rms_epsilon", .float32(.nan), "must be a positive number, got nan"),
            ("llama.attention.layer_norm_rms_epsilon", .float32(-1), "must be a positive number, got -1.0"),
            ("llama.attention.layer_norm_rms_epsilon", .float32(0), "must be a positive number, got 0.0"),
            ("llama.attention.layer_norm_rms_epsilon", .float32(.infinity), "must be a positive number, got inf"),
            ("llama.attention.layer_norm_rms_epsilon", .string("small"), "must be a number"),
            ("llama.rope.freq_base", .float32(0), "must be a positive number, got 0.0"),
            ("llama.rope.freq_base", .float32(.nan), "must be a positive number, got nan"),
            ("llama.rope.freq_base", .float32(-10000), "must be a positive number"),
            ("llama.context_length", .uint32(0), "must be positive, got 0"),
            ("llama.context_length", .uint64(1 << 40), "more than the \(LlamaHyperparameters.maximumContext) Lancet accepts"),
        ]
        for (key, value, phrase) in cases {
            assertLoadError(try ModelLoader.load(try gguf(S.set(key, value))), "metadata '\(key)'", phrase)
        }
    }

    func testGGUFRefusesHeadCountsThatDoNotDivide() throws {
        assertLoadError(try ModelLoader.load(try gguf(S.set("llama.attention.head_count_kv", .uint32(3)))),
                        "metadata 'llama.attention.head_count_kv'", "3 key-value heads do not divide 4 attention heads")
        let noKeyLength: (inout [(key: String, value: GGUFValue)]) -> Void = { $0.removeAll { $0.key == "llama.attention.key_length" } }
        assertLoadError(try ModelLoader.load(try gguf(noKeyLength, S.set("llama.attention.head_count", .uint32(6)))),
                        "metadata 'llama.attention.head_count'", "6 heads do not divide llama.embedding_length 64")
        assertLoadError(try ModelLoader.load(try gguf(S.set("llama.attention.key_length", .uint32(15)))),
                        "metadata 'llama.attention.key_length'", "must be even")
        assertLoadError(try ModelLoader.load(try gguf(S.set("llama.rope.dimension_count", .uint32(1000)))),
                        "metadata 'llama.rope.dimension_count'", "no larger than the head dimension 16, got 1000")
        assertLoadError(try ModelLoader.load(try gguf(S.set("llama.attention.head_count", .array(.uint32, [.uint32(4), .uint32(1 << 20)])))),
                        "metadata 'llama.attention.head_count'", "block 1: must be between 0 and \(LlamaHyperparameters.maximumHeads)")
    }

    /// The case: 10^12 blocks used to abort on an allocation; now refused before anything is sized by it.
    func testGGUFBlockCountIsCheckedAgainstTheBlocksPresentBeforeAnyAllocation() throws {
        for (count, phrase) in [(UInt64(1_000_000_000_000), "is 1000000000000, more than the 65536 blocks Lancet accepts (the file holds tensors for 2)"),
                                (3, "is 3, but the file holds tensors for only 2 blocks (blk.N.*)"),
                                (70000, "is 70000, more than the 65536 blocks"), (0, "must be positive, got 0")] {
            assertLoadError(try ModelLoader.load(try gguf(S.set("llama.block_count", .uint64(count)))), "metadata 'llama.block_count'", phrase)
        }
    }

    func testTheBlocksPresentCountDistinctIndicesOnly() {
        let names = ["blk.0.a", "blk.0.b", "blk.7.a", "blk.999999999999.a", "blk.x.a", "blk..a", "output.weight", "blk.3"]
        XCTAssertEqual(LlamaHyperparameters.blocksWithTensors(names, prefix: "blk."), 3)
    }

    func testGGUFTokenTypesOutOfRangeAreRefused() throws {
        let tokens = (0..<64).map { GGUFValue.string("t\($0)") }
        let scores = (0..<64).map { GGUFValue.float32(-Float($0)) }
        for (bad, index) in [(999, 5), (-1, 0), (7, 63)] {
            var types = [GGUFValue](repeating: .int32(1), count: 64)
            types[index] = .int32(Int32(bad))
            let path = try gguf(S.set("tokenizer.ggml.model", .string("llama")), S.set("tokenizer.ggml.tokens", .array(.string, tokens)),
                                S.set("tokenizer.ggml.scores", .array(.float32, scores)), S.set("tokenizer.ggml.token_type", .array(.int32, types)))
            assertLoadError(try ModelLoader.load(path), "tokenizer.ggml.token_type[\(index)]", "\(bad) is not a token type")
        }
        let valid = try gguf(S.set("tokenizer.ggml.model", .string("llama")), S.set("tokenizer.ggml.tokens", .array(.string, tokens)),
                             S.set("tokenizer.ggml.scores", .array(.float32, scores)),
                             S.set("tokenizer.ggml.token_type", .array(.int32, (0..<64).map { .int32(Int32($0 % 7)) })))
        XCTAssertEqual(try ModelLoader.load(valid).tokenizer?.tokenCount, 64)
    }

    func testHuggingFaceRefusesTheSameValuesInItsOwnFieldNames() throws {
        let cases: [(String, String, String)] = [
            ("rms_norm_eps", "-1", "must be a positive number, got -1.0"),
            ("rope_theta", "0", "must be a positive number, got 0.0"),
            ("max_position_embeddings", "0", "must be positive, got 0"),
            ("num_key_value_heads", "3", "3 key-value heads do not divide 4 attention heads"),
            ("vocab_size", "100000000", "is 100000000, more than the \(LlamaHyperparameters.maximumVocabulary) Lancet accepts"),
        ]
        for (field, value, phrase) in cases {
            let folder = temporary(try S.tinyFolder())
            try S.editConfig(folder, field, value)
            assertLoadError(try ModelLoader.load(folder), "config.json: \(field): \(phrase)")
            assertLoadError(try ModelLoader.summary(folder), "config.json: \(field)")
        }
    }

    func testHuggingFaceLayerCountIsCheckedAgainstTheLayersPresent() throws {
        for (count, phrase) in [("1000000000000", "is 1000000000000, more than the 65536 blocks Lancet accepts (the file holds tensors for 2)"),
                                ("3", "is 3, but the file holds tensors for only 2 blocks (model.layers.N.*)")] {
            let folder = temporary(try S.tinyFolder())
            try S.editConfig(folder, "num_hidden_layers", count)
            assertLoadError(try ModelLoader.load(folder), "config.json: num_hidden_layers \(phrase)")
            assertLoadError(try ModelLoader.summary(folder), "num_hidden_layers \(phrase)")
        }
    }
}
