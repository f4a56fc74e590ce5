import Foundation
import XCTest
@testable import LancetIO

final class HuggingFaceConfigTests: XCTestCase {
    /// SmolLM2-135M-Instruct's config.json, with the extra keys transformers writes (ignored by Lancet).
    static let smolLM2 = """
    {
      "architectures": ["LlamaForCausalLM"],
      "attention_bias": false,
      "attention_dropout": 0.0,
      "bos_token_id": 1,
      "eos_token_id": 2,
      "hidden_act": "silu",
      "hidden_size": 576,
      "initializer_range": 0.041666666666666664,
      "intermediate_size": 1536,
      "is_llama_config": true,
      "max_position_embeddings": 8192,
      "mlp_bias": false,
      "model_type": "llama",
      "num_attention_heads": 9,
      "num_hidden_layers": 30,
      "num_key_value_heads": 3,
      "pad_token_id": 2,
      "pretraining_tp": 1,
      "rms_norm_eps": 1e-05,
      "rope_interleaved": false,
      "rope_scaling": null,
      "rope_theta": 100000,
      "tie_word_embeddings": true,
      "torch_dtype": "bfloat16",
      "transformers_version": "4.42.3",
      "use_cache": true,
      "vocab_size": 49152
    }
    """

    /// Llama 3.1 8B's config.json (rope_scaling llama3, a list of EOS ids).
    static let llama31 = """
    {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
     "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
     "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
     "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
     "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
     "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0",
     "use_cache": true, "vocab_size": 128256}
    """

    /// Qwen2-0.5B's config.json.
    static let qwen2 = """
    {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
     "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 131072,
     "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
     "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
     "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
    """

    /// Mistral-7B-v0.1's config.json.
    static let mistral = """
    {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
     "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
     "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
     "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
     "use_cache": true, "vocab_size": 32000}
    """

    func parse(_ text: String) throws -> LlamaFamilyConfig { try LlamaFamilyConfig(json: Data(text.utf8), path: "test/config.json") }

    func testSmolLM2ConfigParses() throws {
        let c = try parse(Self.smolLM2)
        XCTAssertEqual(c.modelType, .llama)
        XCTAssertEqual(c.architectures, ["LlamaForCausalLM"])
        XCTAssertEqual(c.hiddenSize, 576)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.numHiddenLayers, 30)
        XCTAssertEqual(c.numAttentionHeads, 9)
        XCTAssertEqual(c.numKeyValueHeads, 3)
        XCTAssertNil(c.headDim)
        XCTAssertEqual(c.headDimension, 64)
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertEqual(c.ropeTheta, 100_000)
        XCTAssertNil(c.ropeScaling)
        XCTAssertEqual(c.vocabSize, 49152)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.maxPositionEmbeddings, 8192)
        XCTAssertFalse(c.hasQKVBias)
        XCTAssertFalse(c.mlpBias)
        XCTAssertEqual(c.bosTokenId, 1)
        XCTAssertEqual(c.eosTokenIds, [2])
        XCTAssertEqual(c.torchDtype, "bfloat16")
        XCTAssertEqual(c.transformersVersion, "4.42.3")
        XCTAssertNil(c.effectiveSlidingWindow)
    }

    func testSmolLM2ConfigRoundTripsThroughAFile() throws {
        let folder = try makeTemporaryFolder("hf-config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let c = try parse(Self.smolLM2)
        let path = folder + "/config.json"
        try c.write(to: path)
        let back = try LlamaFamilyConfig.load(path: path)
        XCTAssertEqual(back, c)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Pretty-printed, sorted keys, and the fields transformers needs to pick LlamaForCausalLM.
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(object["model_type"] as? String, "llama")
        XCTAssertEqual(object["torch_dtype"] as? String, "bfloat16")
        XCTAssertEqual(object["eos_token_id"] as? Int, 2)
        XCTAssertEqual(object["tie_word_embeddings"] as? Bool, true)
        XCTAssertTrue(object.keys.contains("rope_scaling"), "rope_scaling is written as null, as transformers does")
        let keyOrder = text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  \""), let end = line.dropFirst(3).firstIndex(of: "\"") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        }
        XCTAssertEqual(keyOrder, keyOrder.sorted())
        XCTAssertGreaterThan(keyOrder.count, 15)
        XCTAssertEqual(try c.jsonData(), try back.jsonData(), "encoding is stable")
    }

    func testConfigBuiltInCodeMatchesTheParsedOne() throws {
        var c = LlamaFamilyConfig(hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3,
                                  rmsNormEps: 1e-5, ropeTheta: 100_000, maxPositionEmbeddings: 8192, vocabSize: 49152,
                                  tieWordEmbeddings: true, bosTokenId: 1, eosTokenIds: [2], torchDtype: "bfloat16")
        c.transformersVersion = "4.42.3"
        XCTAssertEqual(c, try parse(Self.smolLM2))
    }

    func testLlama3RopeScalingParsesAndRoundTrips() throws {
        let c = try parse(Self.llama31)
        XCTAssertEqual(c.ropeScaling, RopeScaling(kind: .llama3, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        XCTAssertEqual(c.eosTokenIds, [128001, 128008, 128009])
        XCTAssertEqual(c.ropeTheta, 500_000)
        XCTAssertEqual(c.headDimension, 128)
        XCTAssertEqual(try parse(String(decoding: c.jsonData(), as: UTF8.self)), c)
        let text = String(decoding: try c.jsonData(), as: UTF8.self)
        XCTAssertTrue(text.contains("\"rope_type\" : \"llama3\""), text)
        XCTAssertTrue(text.contains("128009"))
    }

    /// Llama 3.1's config as transformers 5.24 saves it: RoPE in `rope_parameters`, `dtype` for `torch_dtype`.
    static let llama31Transformers5 = """
    {
      "architectures": [
        "LlamaForCausalLM"
      ],
      "attention_bias": false,
      "attention_dropout": 0.0,
      "bos_token_id": 128000,
      "dtype": "bfloat16",
      "eos_token_id": [
        128001,
        128008,
        128009
      ],
      "head_dim": 128,
      "hidden_act": "silu",
      "hidden_size": 4096,
      "initializer_range": 0.02,
      "intermediate_size": 14336,
      "max_position_embeddings": 131072,
      "mlp_bias": false,
      "model_type": "llama",
      "num_attention_heads": 32,
      "num_hidden_layers": 32,
      "num_key_value_heads": 8,
      "pad_token_id": null,
      "pretraining_tp": 1,
      "rms_norm_eps": 1e-05,
      "rope_parameters": {
        "factor": 8,
        "high_freq_factor": 4,
        "low_freq_factor": 1,
        "original_max_position_embeddings": 8192,
        "rope_theta": 500000,
        "rope_type": "llama3"
      },
      "tie_word_embeddings": false,
      "transformers_version": "5.24.0",
      "use_cache": true,
      "vocab_size": 128256
    }
    """

    func testTransformers5RopeParametersParseLikeTheLegacyKeys() throws {
        let v5 = try parse(Self.llama31Transformers5)
        var legacy = try parse(Self.llama31)
        XCTAssertEqual(v5.ropeTheta, 500_000)
        XCTAssertEqual(v5.ropeScaling, legacy.ropeScaling)
        XCTAssertEqual(v5.torchDtype, "bfloat16")
        XCTAssertEqual(v5.headDim, 128)
        legacy.headDim = 128
        legacy.transformersVersion = "5.24.0"
        XCTAssertEqual(v5, legacy)
        let smolV5 = Self.smolLM2.replacingOccurrences(of: "\"rope_scaling\": null,\n  \"rope_theta\": 100000,", with: "\"rope_parameters\": {\"rope_theta\": 100000, \"rope_type\": \"default\"},")
        XCTAssertNotEqual(smolV5, Self.smolLM2)
        XCTAssertEqual(try parse(smolV5).ropeTheta, 100_000)
        XCTAssertNil(try parse(smolV5).ropeScaling)
    }

    func testOtherRopeScalingFormsParse() throws {
        func with(_ scaling: String) throws -> RopeScaling? {
            try parse(Self.smolLM2.replacingOccurrences(of: "\"rope_scaling\": null", with: "\"rope_scaling\": \(scaling)")).ropeScaling
        }
        XCTAssertEqual(try with(#"{"type": "linear", "factor": 2.0}"#), RopeScaling(kind: .linear, factor: 2))
        XCTAssertEqual(try with(#"{"rope_type": "dynamic", "factor": 4}"#), RopeScaling(kind: .dynamic, factor: 4))
        XCTAssertEqual(try with(#"{"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 32768, "beta_fast": 32}"#),
                       RopeScaling(kind: .yarn, factor: 4, originalMaxPositionEmbeddings: 32768, betaFast: 32))
        XCTAssertNil(try with(#"{"rope_type": "default"}"#))
    }

    func testQwen2ConfigImpliesQKVBiases() throws {
        let c = try parse(Self.qwen2)
        XCTAssertEqual(c.modelType, .qwen2)
        XCTAssertTrue(c.hasQKVBias)
        XCTAssertFalse(c.hasOutputProjectionBias)
        XCTAssertFalse(c.mlpBias)
        XCTAssertEqual(c.headDimension, 64)
        XCTAssertEqual(c.numKeyValueHeads, 2)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertNil(c.effectiveSlidingWindow, "use_sliding_window is false")
        XCTAssertEqual(try parse(String(decoding: c.jsonData(), as: UTF8.self)), c)
        XCTAssertFalse(String(decoding: try c.jsonData(), as: UTF8.self).contains("attention_bias"), "Qwen2Config has no attention_bias")
    }

    func testMistralConfigParsesWithSlidingWindow() throws {
        let c = try parse(Self.mistral)
        XCTAssertEqual(c.modelType, .mistral)
        XCTAssertEqual(c.effectiveSlidingWindow, 4096)
        XCTAssertFalse(c.hasQKVBias)
        XCTAssertEqual(try parse(String(decoding: c.jsonData(), as: UTF8.self)), c)
    }

    func testDefaultsFollowTransformers() throws {
        let minimal = #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "rms_norm_eps": 1e-6, "max_position_embeddings": 128, "vocab_size": 100}"#
        let c = try parse(minimal)
        XCTAssertEqual(c.numKeyValueHeads, 4)
        XCTAssertEqual(c.headDimension, 16)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertEqual(c.architectures, ["LlamaForCausalLM"])
        XCTAssertEqual(c.eosTokenIds, [])
        XCTAssertEqual(c.hiddenAct, "silu")
        // An explicit head_dim need not equal hidden / heads (e.g. after head pruning).
        let explicit = try parse(minimal.replacingOccurrences(of: "\"hidden_size\": 64", with: "\"hidden_size\": 66, \"head_dim\": 8"))
        XCTAssertEqual(explicit.headDimension, 8)
    }

    /// (description, config text, expected field, fragment of the reason)
    static let badConfigs: [(String, String, String, String)] = {
        let base = smolLM2
        func replacing(_ old: String, _ new: String) -> String {
            precondition(base.contains(old), old)
            return base.replacingOccurrences(of: old, with: new)
        }
        return [
            ("empty file", "", "", "the file is empty"),
            ("blank file", "  \n", "", "the file is empty"),
            ("malformed JSON", "{\"model_type\": \"llama\",", "", "not valid JSON"),
            ("not an object", "[1, 2]", "", "must hold a JSON object"),
            ("string for an integer", replacing("\"hidden_size\": 576", "\"hidden_size\": \"576\""), "hidden_size", "expected an integer"),
            ("fraction for an integer", replacing("\"vocab_size\": 49152", "\"vocab_size\": 49152.5"), "vocab_size", "expected an integer, got a number it cannot hold"),
            ("string for a bool", replacing("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": \"yes\""), "tie_word_embeddings", "expected true or false"),
            ("string for a number", replacing("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"1e-5\""), "rms_norm_eps", "expected a number"),
            ("null for a required size", replacing("\"hidden_size\": 576", "\"hidden_size\": null"), "hidden_size", "is null"),
            ("eos of the wrong type", replacing("\"eos_token_id\": 2", "\"eos_token_id\": \"2\""), "eos_token_id", "expected an integer or a list of integers"),
            ("eos list with a string", replacing("\"eos_token_id\": 2", "\"eos_token_id\": [2, \"x\"]"), "eos_token_id", "list of integers"),
            ("negative eos in a list", replacing("\"eos_token_id\": 2", "\"eos_token_id\": [2, -1]"), "eos_token_id[1]", "non-negative"),
            ("architectures not a list", replacing("\"architectures\": [\"LlamaForCausalLM\"]", "\"architectures\": \"LlamaForCausalLM\""), "architectures", "expected a list"),
            ("missing hidden_size", replacing("\"hidden_size\": 576,", ""), "hidden_size", "missing required field"),
            ("missing vocab_size", replacing(",\n  \"vocab_size\": 49152", ""), "vocab_size", "missing required field"),
            ("missing model_type", replacing("\"model_type\": \"llama\",", ""), "model_type", "missing required field"),
            ("unsupported model_type", replacing("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\""), "model_type", "unsupported model_type 'gpt2'"),
            ("heads not dividing hidden", replacing("\"hidden_size\": 576", "\"hidden_size\": 577"), "num_attention_heads", "9 heads do not divide hidden_size 577"),
            ("kv heads not dividing heads", replacing("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4"), "num_key_value_heads", "4 key-value heads do not divide 9"),
            ("zero layers", replacing("\"num_hidden_layers\": 30", "\"num_hidden_layers\": 0"), "num_hidden_layers", "must be positive"),
            ("odd head_dim", replacing("\"hidden_size\": 576", "\"hidden_size\": 576, \"head_dim\": 63"), "head_dim", "must be even"),
            ("zero rms_norm_eps", replacing("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 0"), "rms_norm_eps", "positive"),
            ("non-silu activation", replacing("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), "hidden_act", "'silu'"),
            ("unknown rope scaling", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2}"), "rope_scaling.rope_type", "unsupported rope scaling 'longrope'"),
            ("rope scaling without type", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"factor\": 2}"), "rope_scaling.rope_type", "missing required field"),
            ("rope factor as a string", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": \"2\"}"), "rope_scaling.factor", "expected a number"),
            ("rope factor below 1", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 0.5}"), "rope_scaling.factor", "≥ 1"),
            ("llama3 without low_freq_factor", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}"), "rope_scaling.low_freq_factor", "missing required field"),
            ("llama3 with high ≤ low", replacing("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1, \"original_max_position_embeddings\": 8192}"), "rope_scaling.high_freq_factor", "greater than low_freq_factor"),
            ("rope scaling not an object", replacing("\"rope_scaling\": null", "\"rope_scaling\": 2"), "rope_scaling", "expected an object"),
        ]
    }()

    func testEachBadConfigNamesTheFieldAndTheProblem() {
        for (what, text, field, fragment) in Self.badConfigs {
            XCTAssertThrowsError(try parse(text), what) { error in
                guard let e = error as? HuggingFaceConfigError else { return XCTFail("\(what): not a HuggingFaceConfigError: \(error)") }
                XCTAssertEqual(e.path, "test/config.json", what)
                XCTAssertEqual(e.field, field, "\(what): \(e)")
                XCTAssertTrue(e.reason.contains(fragment), "\(what): expected '\(fragment)' in: \(e)")
                XCTAssertTrue(e.description.hasPrefix("test/config.json: "), "\(what): \(e)")
            }
        }
    }

    func testLoadingAMissingOrEmptyFileNamesTheFile() throws {
        let folder = try makeTemporaryFolder("hf-missing")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertThrowsError(try LlamaFamilyConfig.load(path: folder + "/config.json")) {
            XCTAssertEqual(($0 as? HuggingFaceConfigError)?.description, "\(folder)/config.json: cannot read the file")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/config.json", contents: Data()))
        XCTAssertThrowsError(try LlamaFamilyConfig.load(path: folder + "/config.json")) {
            XCTAssertEqual(($0 as? HuggingFaceConfigError)?.description, "\(folder)/config.json: the file is empty")
        }
    }

    func testWritingAnInconsistentConfigNamesTheField() throws {
        var c = try parse(Self.smolLM2)
        c.numKeyValueHeads = 2
        XCTAssertThrowsError(try c.write(to: "/nonexistent/config.json")) {
            XCTAssertEqual(($0 as? HuggingFaceConfigError)?.field, "num_key_value_heads", "\($0)")
        }
        c.numKeyValueHeads = 3
        c.ropeScaling = RopeScaling(kind: .llama3, factor: 8)
        XCTAssertThrowsError(try c.jsonData()) {
            XCTAssertEqual(($0 as? HuggingFaceConfigError)?.field, "rope_scaling.low_freq_factor", "\($0)")
        }
    }
}
