import XCTest
@testable import LancetIO

/// SHA-256 against the FIPS 180-4 example vectors (NIST's "abc", the empty message, the 448- and 896-bit
/// messages, one million 'a'), and incremental updates in uneven pieces against one call: provenance hashes
/// files piece by piece.
final class SHA256KnownAnswerTests: XCTestCase {
    func testNISTExampleVectors() {
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testUpdatesInUnevenPiecesEqualOneCall() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for pieces in [[1000], [1, 63, 64, 65, 807], [55, 1, 8, 936], [0, 64, 0, 936]] {
            var h = SHA256()
            var offset = 0
            for n in pieces {
                h.update(Array(message[offset..<(offset + n)]))
                offset += n
            }
            XCTAssertEqual(h.finalizeHex(), SHA256.hex(message), "pieces \(pieces)")
        }
    }
}
