import Foundation
import XCTest
@testable import LancetIO

/// Golden tests: SmolLM2's tokenizer read from the GGUF must give llama.cpp's ids exactly.
final class TokenizerReferenceTests: XCTestCase {
    func testSmolLM2MetadataIsReadAsLlamaCppReadsIt() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        XCTAssertEqual(tok.kind, .byteLevelBPE)
        XCTAssertEqual(tok.preTokenizer?.name, "smollm")
        XCTAssertEqual(tok.preTokenizer?.algorithm, .digitsThenGPT2)
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertEqual(tok.bos, 1)
        XCTAssertEqual(tok.eos, 2)
        XCTAssertEqual(tok.unk, 0)
        XCTAssertEqual(tok.pad, 2)
        XCTAssertFalse(tok.addBOS)
        XCTAssertFalse(tok.addEOS)
        XCTAssertEqual(tok.token(1), "<|im_start|>")
        XCTAssertEqual(tok.id(of: "<|im_end|>"), 2)
        XCTAssertEqual(tok.tokenTypes[1], .control)
        XCTAssertEqual(tok.id(of: "Ġthe"), 260)
        XCTAssertTrue(tok.chatTemplate?.contains("<|im_start|>") ?? false)
    }

    func testFirstEightKilobytesOfWikiTestMatchCommittedLlamaCppIDs() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        let text = try String(contentsOf: TokenizerTestSupport.fixture("wiki.test.head.txt"), encoding: .utf8)
        let expected = TokenizerTestSupport.parseIDs(
            try String(contentsOf: TokenizerTestSupport.fixture("wiki.test.head.ids.txt"), encoding: .utf8))
        XCTAssertEqual(expected.count, 1910)
        let ids = tok.encode(text)
        XCTAssertNil(TokenizerTestSupport.firstDifference(ids, expected))
        XCTAssertEqual(tok.decode(ids), text)
    }

    func testTrickyStringsMatchLlamaTokenize() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        let data = try Data(contentsOf: TokenizerTestSupport.fixture("tokenizer-tricky-strings.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let cases = root["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 20)
        for c in cases {
            let name = c["name"] as! String
            let text = c["text"] as! String
            let parse = c["parseSpecial"] as! Bool
            let expected = (c["ids"] as! [NSNumber]).map { Int32($0.intValue) }
            let ids = tok.encode(text, addSpecialTokens: false, parseSpecial: parse)
            XCTAssertNil(TokenizerTestSupport.firstDifference(ids, expected), "case \(name)")
            XCTAssertEqual(tok.decode(ids), text, "round trip of case \(name)")
        }
    }

    func testReferencePromptsMatchLlamaCppIDs() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        guard let url = TokenizerTestSupport.sharedFile("reference/prompts.json") else {
            throw XCTSkip("shared reference/prompts.json not found")
        }
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let prompts = root["prompts"] as! [String: [String: Any]]
        XCTAssertEqual(prompts.count, 3)
        for (name, p) in prompts.sorted(by: { $0.key < $1.key }) {
            let text = p["text"] as! String
            let expected = (p["ids"] as! [NSNumber]).map { Int32($0.intValue) }
            XCTAssertNil(TokenizerTestSupport.firstDifference(tok.encode(text), expected), "prompt \(name)")
        }
    }

    /// The whole of wiki.test.raw (1.29 MB, 303,415 ids) against llama.cpp's ids; also reports the time.
    func testWholeWikiTestMatchesLlamaCppAndIsFast() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        guard let raw = TokenizerTestSupport.sharedFile("data/wikitext-2/wiki.test.raw"),
            let ref = TokenizerTestSupport.sharedFile("reference/wiki.test.llamacpp-ids.txt.gz")
        else { throw XCTSkip("shared wiki.test.raw or its reference ids not found") }
        let text = try String(contentsOf: raw, encoding: .utf8)
        let expected = TokenizerTestSupport.parseIDs(String(decoding: try TokenizerTestSupport.gunzip(ref), as: UTF8.self))
        XCTAssertEqual(expected.count, 303_415)

        var best = Double.infinity
        var ids: [Int32] = []
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            ids = tok.encode(text)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        print("wiki.test.raw: \(text.utf8.count) bytes -> \(ids.count) ids, best of 3: \(String(format: "%.3f", best)) s")
        XCTAssertNil(TokenizerTestSupport.firstDifference(ids, expected))
        #if !DEBUG
            XCTAssertLessThan(best, 5.0, "encoding the whole file must take under 5 s in release")
        #endif
        let t0 = DispatchTime.now().uptimeNanoseconds
        let back = tok.decode(ids)
        print("decode: \(String(format: "%.3f", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)) s")
        XCTAssertEqual(back, text)
    }
}
