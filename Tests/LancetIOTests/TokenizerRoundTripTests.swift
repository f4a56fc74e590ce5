import XCTest
@testable import LancetIO

/// Property tests: decoding inverts encoding for arbitrary text, and every token renders to bytes.
final class TokenizerRoundTripTests: XCTestCase {
    /// splitmix64, so failures reproduce.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Scalars chosen to stress the pre-tokenizer: ASCII, spaces of every kind, digits of several
    /// scripts, letters, marks, emoji with ZWJ and modifiers, private use, unassigned, controls.
    static let pools: [[UInt32]] = [
        Array(0x20...0x7E), [0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x20, 0x20, 0x20, 0x85, 0xA0, 0x2003, 0x3000, 0x2028],
        Array(0x30...0x39) + [0xBD, 0xB2, 0x663, 0xFF13, 0x216B], [0x27, 0x27, 0x73, 0x53, 0x74, 0x6C, 0x6C],
        Array(0xC0...0x17F), Array(0x300...0x36F), Array(0x4E00...0x4E40), Array(0xAC00...0xAC20),
        [0x1F600, 0x1F680, 0x1F468, 0x200D, 0x1F469, 0x1F3FD, 0xFE0F, 0x1F1EB, 0x1F1F7, 0x2764],
        [0xE000, 0xF8FF, 0x10FFFD, 0x0378, 0x0001, 0x001B, 0x007F, 0x00AD, 0xFEFF, 0x1D400, 0x1D7CE],
    ]

    static func randomString(_ rng: inout SplitMix64, maxLength: Int) -> String {
        var v = String.UnicodeScalarView()
        for _ in 0..<rng.below(maxLength + 1) {
            let pool = pools[rng.below(pools.count)]
            v.append(Unicode.Scalar(pool[rng.below(pool.count)])!)
        }
        return String(v)
    }

    func testDecodeInvertsEncodeForRandomUnicode() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        var rng = SplitMix64(state: 0x1A2B_3C4D)
        for i in 0..<3000 {
            let s = Self.randomString(&rng, maxLength: 40)
            let ids = tok.encode(s, addSpecialTokens: false, parseSpecial: false)
            XCTAssertEqual(tok.decode(ids), s, "string \(i): \(s.unicodeScalars.map { String($0.value, radix: 16) })")
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabularySize })
        }
    }

    func testEveryTokenRoundTripsThroughItsBytes() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        var mismatches = 0
        for id in 0..<Int32(tok.vocabularySize) {
            let bytes = tok.tokenBytes(id)
            XCTAssertFalse(bytes.isEmpty, "token \(id) renders as nothing")
            XCTAssertEqual(tok.decodeBytes([id]), bytes)
            // Normal tokens' bytes re-spell to the token's own text under the byte map.
            if tok.tokenTypes[Int(id)] == .normal {
                XCTAssertEqual(ByteUnicodeMapping.encode(bytes), tok.token(id), "token \(id)")
            }
            // A token whose bytes are valid UTF-8 is recovered from its own text (BPE can prefer a
            // different split, so only count those that do not come back whole).
            if let s = String(validating: bytes, as: UTF8.self) {
                let ids = tok.encode(s, addSpecialTokens: false, parseSpecial: true)
                XCTAssertEqual(tok.decodeBytes(ids), bytes, "token \(id)")
                if ids != [id] { mismatches += 1 }
            }
        }
        print("tokens not re-encoded to themselves: \(mismatches) of \(tok.vocabularySize)")
    }

    func testControlTokensAreRecognisedOnlyWhenParsingSpecial() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        let text = "<|im_start|>user\nHello<|im_end|>"
        let parsed = tok.encode(text)
        XCTAssertEqual(parsed.first, 1)
        XCTAssertEqual(parsed.last, 2)
        let literal = tok.encode(text, parseSpecial: false)
        XCTAssertFalse(literal.contains(1))
        XCTAssertFalse(literal.contains(2))
        XCTAssertEqual(tok.decode(parsed), text)
        XCTAssertEqual(tok.decode(literal), text)
        XCTAssertEqual(tok.decode(parsed, skipSpecialTokens: true), "user\nHello")
    }

    func testStreamingDecoderEmitsOnlyCompleteCharactersAndMatchesDecode() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        var rng = SplitMix64(state: 99)
        for _ in 0..<300 {
            let s = Self.randomString(&rng, maxLength: 30)
            let ids = tok.encode(s, addSpecialTokens: false)
            var stream = tok.streamingDecoder()
            var out = ""
            for id in ids {
                let piece = stream.append(id)
                XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "a valid text never shows U+FFFD mid-stream")
                out += piece
            }
            out += stream.finish()
            XCTAssertEqual(out, s)
        }
    }

    func testStreamingDecoderOfArbitraryTokensEqualsDecode() throws {
        let tok = try TokenizerTestSupport.smolLM2()
        var rng = SplitMix64(state: 7)
        for _ in 0..<500 {
            let ids = (0..<rng.below(12)).map { _ in Int32(rng.below(tok.vocabularySize)) }
            var stream = tok.streamingDecoder()
            let out = ids.map { stream.append($0) }.joined() + stream.finish()
            XCTAssertEqual(Array(out.utf8), Array(tok.decode(ids).utf8), "\(ids)")
        }
    }

    func testStreamingDecoderHoldsBackAnUnfinishedCharacter() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x41] + euro.prefix(1)), 1)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x41] + euro.prefix(2)), 1)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x41] + euro), 4)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xF0, 0x9F, 0x98]), 0)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xE0, 0x80]), 2, "E0 80 can never complete: emit")
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xFF]), 1)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x80, 0x80, 0x80, 0x80]), 4)
    }
}
