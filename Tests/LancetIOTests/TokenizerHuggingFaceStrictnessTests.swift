import Foundation
import XCTest
import LancetIO
import LancetIR

/// A `tokenizer.json` whose ids cannot describe one vocabulary is refused, naming the file and the field,
/// before anything is allocated from its ids; a tokenizer larger than the model's embedding is refused at load.
final class TokenizerHuggingFaceStrictnessTests: XCTestCase {
    /// A byte-level tokenizer.json over the 256 byte tokens, with `edit` applied to its vocabulary and added tokens.
    func write(_ edit: (inout [String: Int], inout [[String: Any]]) -> Void) throws -> URL {
        let bytes = ByteUnicodeMapping.scalarForByte.map { String(Character($0)) }
        var vocab = Dictionary(uniqueKeysWithValues: bytes.enumerated().map { ($1, $0) })
        var added: [[String: Any]] = [["id": 256, "content": "<|end|>", "special": true]]
        vocab["<|end|>"] = 256
        edit(&vocab, &added)
        let root: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": [] as [Any]],
            "added_tokens": added,
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-strict-\(getpid())-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: root).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func refusal(_ url: URL) -> String? {
        do {
            _ = try TokenizerSpec(tokenizerJSON: url)
            return nil
        } catch { return "\(error)" }
    }

    func testTheUneditedVocabularyLoads() throws {
        XCTAssertNil(refusal(try write { _, _ in }))
    }

    func testTwoTokensWithOneIdAreRefused() throws {
        let url = try write { vocab, _ in vocab["a"] = vocab["b"] }
        let message = try XCTUnwrap(refusal(url))
        XCTAssertTrue(message.contains(url.path) && message.contains("is also the id of"), message)
    }

    func testAnAddedTokenThatContradictsTheVocabularyIsRefused() throws {
        let url = try write { _, added in added.append(["id": 97, "content": "<|other|>", "special": true]) }
        let message = try XCTUnwrap(refusal(url))
        XCTAssertTrue(message.contains("added_tokens[1]") && message.contains("<|other|>"), message)
    }

    func testAHugeIdIsRefusedBeforeAllocating() throws {
        for id in [1 << 40, Int(Int32.max), 600] {
            let url = try write { vocab, _ in vocab["a"] = id }
            let message = try XCTUnwrap(refusal(url), "id \(id)")
            XCTAssertTrue(message.contains("ids go up to \(id)"), message)
        }
    }

    func testAFewHolesAreFilledAsLlamaCppsConverterDoes() throws {
        let url = try write { vocab, _ in vocab["a"] = nil }
        let spec = try TokenizerSpec(tokenizerJSON: url)
        XCTAssertEqual(spec.tokens.count, 257)
        XCTAssertEqual(spec.tokenTypes[97], .unused)
    }

    func testATokenizerLargerThanTheEmbeddingIsRefusedByTheVerifier() throws {
        var model = TinyLlama.make()  // vocabulary 64
        model.tokenizer = try Tokenizer(spec: try TokenizerSpec(tokenizerJSON: try write { _, _ in }))
        XCTAssertThrowsError(try Verifier.verify(model)) { error in
            XCTAssertTrue("\(error)".contains("257 tokens, more than the embedding's 64 rows"), "\(error)")
        }
    }
}
