import Foundation
import XCTest
@testable import LancetIO

/// The scanners on hand-picked inputs whose llama.cpp splits are known, and the BPE merge engine's
/// two algorithms against each other.
final class PreTokenizerTests: XCTestCase {
    func split(_ name: String, _ text: String) -> [String] { PreTokenizer(name: name)!.split(text) }

    func testGPT2KeepsOneSpaceWithTheNextWordAndLowercaseContractionsOnly() {
        XCTAssertEqual(split("gpt-2", "Hello  world's 'S 123"), ["Hello", " ", " world", "'s", " '", "S", " 123"])
        XCTAssertEqual(split("gpt-2", "a   \n"), ["a", "   \n"])
        XCTAssertEqual(split("gpt-2", "a \nb"), ["a", " ", "\n", "b"])
        XCTAssertEqual(split("gpt-2", "x!!  ?"), ["x", "!!", " ", " ?"])
    }

    func testSmolLMIsolatesEveryDigitBeforeGPT2() {
        XCTAssertEqual(split("smollm", "in 2024, 4 ½"), ["in", " ", "2", "0", "2", "4", ",", " ", "4", " ", "½"])
        XCTAssertEqual(split("smollm", "x  1"), ["x", "  ", "1"])
        XCTAssertEqual(split("smollm", "٣３"), ["٣", "３"])
    }

    func testLlama3GroupsDigitsByThreeAndFoldsContractionCase() {
        XCTAssertEqual(split("llama-bpe", "12345 I'M"), ["123", "45", " I", "'M"])
        XCTAssertEqual(split("llama-bpe", "hi\n\n  there"), ["hi", "\n\n", " ", " there"])
        XCTAssertEqual(split("llama-bpe", "a...\n\nb"), ["a", "...\n\n", "b"])
        XCTAssertEqual(split("llama-bpe", "\tword"), ["\tword"])
        XCTAssertEqual(split("qwen2", "12345"), ["1", "2", "3", "4", "5"])
    }

    func testDefaultChainIsolatesPunctuationAndDigitTriples() {
        XCTAssertEqual(split("default", "a+b 1234567"), ["a", "+", "b", " ", "123", "456", "7"])
    }

    func testEveryPreTokenizerCoversItsInputExactly() {
        var rng = TokenizerRoundTripTests.SplitMix64(state: 3)
        for name in ["gpt-2", "smollm", "llama-bpe", "qwen2", "default"] {
            for _ in 0..<300 {
                let s = TokenizerRoundTripTests.randomString(&rng, maxLength: 50)
                let words = split(name, s)
                XCTAssertEqual(words.joined(), s, name)
                XCTAssertFalse(words.contains(""), name)
            }
        }
    }

    func testUnknownPreTokenizerNameIsRejectedWithTheSupportedList() {
        XCTAssertNil(PreTokenizer(name: "no-such"))
        XCTAssertTrue(PreTokenizer.supportedNames.contains("smollm"))
        XCTAssertTrue(PreTokenizer.supportedNames.contains("llama-bpe"))
    }

    func testHeapMergingAgreesWithScanningMerging() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        var rng = TokenizerRoundTripTests.SplitMix64(state: 11)
        let alphabet = Array("aabcdeeinorst ththeing!.".utf8) + [0xC3, 0xA9]
        for _ in 0..<400 {
            let n = 2 + rng.below(150)
            let word = (0..<n).map { _ in alphabet[rng.below(alphabet.count)] }
            var a = word.map { tok.byteTokens[Int($0)] }
            var b = a
            tok.merger.mergeByScanning(&a)
            tok.merger.mergeWithHeap(&b)
            XCTAssertEqual(a, b)
        }
    }

    /// Compares `CodepointClass` (Swift's Unicode tables) with llama.cpp's generated table, when
    /// llama.cpp's source is on this machine, and prints where they differ.
    func testUnicodeClassesAgreeWithLlamaCppTablesExceptNewlyAssignedCodePoints() throws {
        let path = ProcessInfo.processInfo.environment["LLAMA_CPP_SRC"] ?? "/root/lancet-reference/llama.cpp"
        let url = URL(fileURLWithPath: path).appendingPathComponent("src/unicode-data.cpp")
        guard let source = try? String(contentsOf: url, encoding: .utf8) else { throw XCTSkip("\(url.path) not found") }
        let body = source.components(separatedBy: "unicode_ranges_flags = {")[1].components(separatedBy: "};")[0]
        var ranges: [(UInt32, UInt16)] = []
        for line in body.split(separator: "\n") where line.hasPrefix("{0x") {
            let parts = line.dropFirst().dropLast(2).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            ranges.append((UInt32(parts[0].dropFirst(2), radix: 16)!, UInt16(parts[1].dropFirst(2), radix: 16)!))
        }
        XCTAssertGreaterThan(ranges.count, 1000)
        var differing: [UInt32] = []
        var notExplained: [UInt32] = []
        var onlyLlamaAssigned = 0
        for r in 0..<(ranges.count - 1) {
            let flags = ranges[r].1
            for cp in ranges[r].0..<ranges[r + 1].0 {
                var expected: UInt8 = 0
                if flags & 0x04 != 0 { expected |= CodepointClass.letter }
                if flags & 0x02 != 0 { expected |= CodepointClass.number }
                if flags & 0x20 != 0 { expected |= CodepointClass.punctuation }
                if flags & 0x40 != 0 { expected |= CodepointClass.symbol }
                let mask = CodepointClass.letter | CodepointClass.number | CodepointClass.punctuation | CodepointClass.symbol
                let mine = CodepointClass.computed(cp) & mask
                if mine != expected {
                    differing.append(cp)
                    let swiftUnassigned = Unicode.Scalar(cp).map { $0.properties.generalCategory == .unassigned } ?? true
                    if swiftUnassigned && flags & 0x01 == 0 { onlyLlamaAssigned += 1 }
                    if !(flags & 0x01 != 0 || swiftUnassigned) { notExplained.append(cp) }
                }
            }
        }
        let hex = { (v: [UInt32]) in v.prefix(12).map { "U+" + String($0, radix: 16, uppercase: true) }.joined(separator: " ") }
        print("Swift vs llama.cpp Unicode classes: \(differing.count) code points differ, \(onlyLlamaAssigned) of them assigned only in llama.cpp's table (\(hex(differing)) …)")
        XCTAssertEqual(notExplained, [], "differences not due to a code point being unassigned in one table: \(hex(notExplained))")
    }
}
