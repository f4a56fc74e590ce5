import XCTest
@testable import LancetIO

final class GGUFReaderTests: XCTestCase {
    func testRejectsAFileWithWrongMagic() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-bad-magic-\(getpid()).gguf")
        try Data("NOPE\u{3}\0\0\0".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try GGUFFile(path: url.path)) { e in
            XCTAssertTrue("\(e)".contains("not a GGUF file"), "\(e)")
        }
    }
}
