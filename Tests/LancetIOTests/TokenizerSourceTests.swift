import Foundation
import XCTest
@testable import LancetIO

/// Building tokenizers from GGUF metadata, Hugging Face files and specs: SentencePiece BPE on a
/// synthetic vocabulary, the Hugging Face path against the GGUF path, and the errors.
final class TokenizerSourceTests: XCTestCase {
    /// A minimal GGUF v3 writer for metadata-only test files.
    struct GGUFBuilder {
        var entries: [(String, UInt32, Data)] = []
        static func string(_ s: String) -> Data {
            var d = Data()
            withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(contentsOf: Array(s.utf8))
            return d
        }
        static func raw<T>(_ v: T) -> Data { withUnsafeBytes(of: v) { Data($0) } }
        mutating func add(_ key: String, _ s: String) { entries.append((key, 8, Self.string(s))) }
        mutating func add(_ key: String, _ b: Bool) { entries.append((key, 7, Data([b ? 1 : 0]))) }
        mutating func add(_ key: String, uint32 v: UInt32) { entries.append((key, 4, Self.raw(v))) }
        mutating func add(_ key: String, strings: [String]) {
            var d = Self.raw(UInt32(8)) + Self.raw(UInt64(strings.count))
            for s in strings { d += Self.string(s) }
            entries.append((key, 9, d))
        }
        mutating func add(_ key: String, floats: [Float]) {
            var d = Self.raw(UInt32(6)) + Self.raw(UInt64(floats.count))
            for f in floats { d += Self.raw(f) }
            entries.append((key, 9, d))
        }
        mutating func add(_ key: String, int32s: [Int32]) {
            var d = Self.raw(UInt32(5)) + Self.raw(UInt64(int32s.count))
            for v in int32s { d += Self.raw(v) }
            entries.append((key, 9, d))
        }
        func write(_ name: String) throws -> String {
            var d = Data("GGUF".utf8) + Self.raw(UInt32(3)) + Self.raw(UInt64(0)) + Self.raw(UInt64(entries.count))
            for (k, t, v) in entries { d += Self.string(k) + Self.raw(t) + v }
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-tok-\(getpid())-\(name).gguf")
            try d.write(to: url)
            return url.path
        }
    }

    /// Llama-2-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, characters and scored merges.
    static func sentencePieceVocabulary() -> (tokens: [String], scores: [Float], types: [Int32]) {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        for b in 0..<256 {
            tokens.append("<0x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) + ">")
            types.append(6)
        }
        var scores = [Float](repeating: 0, count: tokens.count)
        let pieces: [(String, Float)] = [
            ("▁", -20), ("h", -21), ("e", -22), ("l", -23), ("o", -24), ("w", -25), ("r", -26), ("d", -27),
            ("ll", -1), ("he", -2), ("hell", -3), ("hello", -4), ("▁hello", -5), ("or", -6), ("▁w", -7),
            ("▁wor", -8), ("ld", -9), ("▁world", -10),
        ]
        for (p, s) in pieces {
            tokens.append(p)
            scores.append(s)
            types.append(1)
        }
        return (tokens, scores, types)
    }

    func sentencePieceTokenizer() throws -> Tokenizer {
        let v = Self.sentencePieceVocabulary()
        var g = GGUFBuilder()
        g.add("tokenizer.ggml.model", "llama")
        g.add("tokenizer.ggml.tokens", strings: v.tokens)
        g.add("tokenizer.ggml.scores", floats: v.scores)
        g.add("tokenizer.ggml.token_type", int32s: v.types)
        let path = try g.write("spm")
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try Tokenizer(gguf: GGUFFile(path: path))
    }

    func testSentencePieceMergesByScoreWithSpacePrefixAndBOS() throws {
        let tok = try sentencePieceTokenizer()
        XCTAssertEqual(tok.kind, .sentencePieceBPE)
        XCTAssertNil(tok.preTokenizer)
        XCTAssertTrue(tok.addBOS)
        XCTAssertTrue(tok.addSpacePrefix)
        let hello = tok.id(of: "▁hello")!, world = tok.id(of: "▁world")!
        XCTAssertEqual(tok.encode("hello world"), [1, hello, world])
        XCTAssertEqual(tok.encode("hello world", addSpecialTokens: false), [hello, world])
        XCTAssertEqual(tok.decode([1, hello, world], skipSpecialTokens: true), "hello world")
        XCTAssertEqual(tok.decode([hello, world]), "hello world")
        XCTAssertEqual(tok.decode([1, hello, world]), "<s> hello world")
    }

    func testSentencePieceSpellsUnknownCharactersWithByteTokens() throws {
        let tok = try sentencePieceTokenizer()
        let byte = { (b: Int) in Int32(3 + b) }
        let ids = tok.encode("hé", addSpecialTokens: false)
        XCTAssertEqual(ids, [tok.id(of: "▁")!, tok.id(of: "h")!, byte(0xC3), byte(0xA9)])
        XCTAssertEqual(tok.decode(ids), "hé")
        // After a special token the next fragment gets a space prefix again, as in llama.cpp.
        let s = tok.encode("hello</s>world", addSpecialTokens: false)
        XCTAssertEqual(s, [tok.id(of: "▁hello")!, 2, tok.id(of: "▁world")!])
        XCTAssertEqual(tok.decode([tok.id(of: "▁hello")!, tok.id(of: "ll")!]), "helloll")
    }

    func testSentencePieceScanAndHeapAgreeOnLongInputs() throws {
        let tok = try sentencePieceTokenizer()
        let text = String(String(repeating: "hello world hel lo wor ld ", count: 40).dropLast())
        let ids = tok.encode(text, addSpecialTokens: false)  // one fragment: heap path
        let pieces = text.split(separator: " ", omittingEmptySubsequences: false)
        let perWord = pieces.flatMap { tok.encode(String($0), addSpecialTokens: false) }  // scan path
        XCTAssertEqual(ids, perWord)
        XCTAssertEqual(tok.decode(ids), text)
    }

    func testUnsupportedGGUFModelNamesTheFieldAndTheSupportedList() throws {
        var g = GGUFBuilder()
        g.add("tokenizer.ggml.model", "bert")
        g.add("tokenizer.ggml.tokens", strings: ["a"])
        let path = try g.write("bert")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(path: path))) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains(path) && m.contains("tokenizer.ggml.model") && m.contains("bert")
                && m.contains("gpt2, llama"), m)
        }
    }

    func testMissingMergesAndUnknownMergeTokensAreReported() throws {
        var g = GGUFBuilder()
        g.add("tokenizer.ggml.model", "gpt2")
        g.add("tokenizer.ggml.pre", "smollm")
        g.add("tokenizer.ggml.tokens", strings: ["a", "b", "ab"])
        let path = try g.write("nomerges")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(path: path))) { e in
            XCTAssertEqual((e as? TokenizerError)?.field, "tokenizer.ggml.merges", "\(e)")
        }
        g.add("tokenizer.ggml.merges", strings: ["a b", "ab c"])
        let path2 = try g.write("badmerge")
        defer { try? FileManager.default.removeItem(atPath: path2) }
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(path: path2))) { e in
            XCTAssertEqual((e as? TokenizerError)?.field, "tokenizer.ggml.merges[1]", "\(e)")
            XCTAssertTrue("\(e)".contains("unknown token 'c'"), "\(e)")
        }
    }

    func testUnsupportedPreTokenizerListsTheSupportedOnes() {
        let spec = TokenizerSpec(source: "x.gguf", kind: .byteLevelBPE, tokens: ["a"], merges: [], preTokenizer: "tekken")
        XCTAssertThrowsError(try Tokenizer(spec: spec)) { e in
            XCTAssertTrue("\(e)".contains("'tekken'") && "\(e)".contains("smollm") && "\(e)".contains("llama-bpe"), "\(e)")
        }
    }

    func testSpecBuiltByteLevelTokenizerMergesByRankAndAppendsEOS() throws {
        // A tiny byte-level vocabulary: every byte character, two merges, one control token.
        let bytes = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) }
        let spec = TokenizerSpec(
            source: "tiny", kind: .byteLevelBPE, tokens: bytes + ["Ġt", "Ġth", "<|end|>"],
            tokenTypes: Array(repeating: .normal, count: 258) + [.control],
            merges: [MergeRule("Ġ", "t"), MergeRule("Ġt", "h")], preTokenizer: "gpt-2", eos: 258, addEOS: true)
        let tok = try Tokenizer(spec: spec)
        XCTAssertEqual(tok.encode("a th<|end|>"), [97, 257, 258, 258])
        XCTAssertEqual(tok.encode("a th<|end|>", addSpecialTokens: false, parseSpecial: false).count, 9, "a, Ġth, then <, |, e, n, d, |, > as single bytes")
        XCTAssertEqual(tok.decode(tok.encode("a th<|end|>")), "a th<|end|><|end|>")
    }

    /// The SmolLM2 vocabulary written as a Hugging Face `tokenizer.json` + `tokenizer_config.json`
    /// loads into a tokenizer that gives the same ids as the GGUF one.
    func testHuggingFaceFolderGivesTheSameIDsAsTheGGUF() throws {
        let gguf = try TokenizerTestSupport.smolLM2()
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for i in 0..<gguf.vocabularySize {
            vocab[gguf.tokens[i]] = i
            if gguf.tokenTypes[i] == .control {
                added.append(["id": i, "content": gguf.tokens[i], "special": true, "lstrip": false, "rstrip": false])
            }
        }
        let path = TokenizerTestSupport.modelCandidates.first { FileManager.default.fileExists(atPath: $0) }!
        let spec = try TokenizerSpec(gguf: GGUFFile(path: path))
        let json: [String: Any] = [
            "added_tokens": added,
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Digits", "individual_digits": true],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": spec.merges!.map { "\($0.left) \($0.right)" },
                      "byte_fallback": false, "ignore_merges": false],
        ]
        let config: [String: Any] = [
            "add_bos_token": false, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "chat_template": gguf.chatTemplate ?? "",
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-hf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))

        let hf = try Tokenizer(huggingFaceFolder: dir)
        XCTAssertEqual(hf.preTokenizer?.name, "smollm")
        XCTAssertEqual(hf.bos, 1)
        XCTAssertEqual(hf.eos, 2)
        XCTAssertFalse(hf.addBOS)
        XCTAssertEqual(hf.chatTemplate, gguf.chatTemplate)
        let text = try String(contentsOf: TokenizerTestSupport.fixture("wiki.test.head.txt"), encoding: .utf8)
            + "<|im_start|>user\n4 ½ 🤖<|im_end|>"
        XCTAssertEqual(hf.encode(text), gguf.encode(text))

        // Newer transformers save the template as chat_template.jinja; the config's own template wins when both exist.
        let jinja = dir.appendingPathComponent("chat_template.jinja")
        try Data("{{ messages }}".utf8).write(to: jinja)
        XCTAssertEqual(try Tokenizer(huggingFaceFolder: dir).chatTemplate, gguf.chatTemplate)
        var bare = config
        bare["chat_template"] = nil
        try JSONSerialization.data(withJSONObject: bare).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(try Tokenizer(huggingFaceFolder: dir).chatTemplate, "{{ messages }}")
        try Data([0xFF, 0xFE, 0x00]).write(to: jinja)
        XCTAssertThrowsError(try Tokenizer(huggingFaceFolder: dir)) { e in
            XCTAssertTrue("\(e)".contains("chat_template.jinja") && "\(e)".contains("UTF-8"), "\(e)")
        }
    }

    func testHuggingFaceLlama3SplitAndPairMergesAreRecognised() throws {
        let bytes = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) }
        var vocab: [String: Int] = [:]
        for (i, b) in bytes.enumerated() { vocab[b] = i }
        vocab["Ġt"] = 256
        let json: [String: Any] = [
            "added_tokens": [["id": 257, "content": "<|begin_of_text|>", "special": true]],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": TokenizerSpec.llama3Regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]],
            "post_processor": ["type": "TemplateProcessing", "single": [
                ["SpecialToken": ["id": "<|begin_of_text|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": [["Ġ", "t"]], "ignore_merges": true],
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-hf-l3-\(getpid()).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let tok = try Tokenizer(tokenizerJSON: url)
        XCTAssertEqual(tok.preTokenizer?.algorithm, .llama3)
        XCTAssertTrue(tok.addBOS)
        XCTAssertEqual(tok.encode("a t"), [257, 97, 256])

        var bad = json
        bad["pre_tokenizer"] = ["type": "Whitespace"]
        try JSONSerialization.data(withJSONObject: bad).write(to: url)
        XCTAssertThrowsError(try Tokenizer(tokenizerJSON: url)) { e in
            XCTAssertEqual((e as? TokenizerError)?.field, "pre_tokenizer", "\(e)")
            XCTAssertTrue("\(e)".contains("Whitespace"), "\(e)")
        }
    }
}
