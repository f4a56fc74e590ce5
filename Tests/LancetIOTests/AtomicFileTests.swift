import Foundation
import LancetIO
import XCTest

/// Atomic writes never go through a link, and their failures say which file and what failed, in words.
final class AtomicFileTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testWritingOverALinkReplacesTheLinkAndLeavesItsTargetAlone() throws {
        let target = folder + "/target.txt", link = folder + "/out.bin"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try AtomicFile.write(to: link) { try $0.write(Array("new".utf8)) }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep")
        XCTAssertEqual(try String(contentsOfFile: link, encoding: .utf8), "new")
        XCTAssertThrowsError(try FileManager.default.destinationOfSymbolicLink(atPath: link), "the link was replaced by a file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["out.bin", "target.txt"], "no temporary left")
    }

    func testAFolderThatDoesNotExistIsNamedWithTheReasonInWords() {
        let path = "/proc/lancet-\(UUID().uuidString)/x.bin"
        XCTAssertThrowsError(try AtomicFile.write(to: path) { try $0.write([1]) }) { e in
            let text = "\(e)"
            XCTAssertTrue(text.hasPrefix("\(path): cannot create \(path).tmp-"), text)
            XCTAssertTrue(text.hasSuffix(": no such file or directory"), text)
        }
    }

    func testFoundationFileErrorsAreDescribedInWordsNamingTheFile() {
        let path = "/proc/lancet-\(UUID().uuidString)/sub"
        XCTAssertThrowsError(try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) { e in
            let text = IOErrorText.describe(e)
            XCTAssertNotNil(text, "\(e)")
            XCTAssertTrue(text?.contains("/proc/lancet-") ?? false, text ?? "")
            XCTAssertFalse(text?.contains("Code=") ?? true, text ?? "")
        }
        XCTAssertThrowsError(try Data().write(to: URL(fileURLWithPath: path + "/f"))) { e in
            XCTAssertEqual(IOErrorText.describe(e), "cannot write \(path)/f: no such file or directory", "\(e)")
        }
        XCTAssertNil(IOErrorText.describe(FileWriteError(path: "x", reason: "y")), "Lancet's own errors keep their words")
    }

    func testErrnoWordsAreLowerCase() {
        XCTAssertEqual(IOErrorText.words(errno: EACCES), "permission denied")
        XCTAssertEqual(IOErrorText.words(errno: ENOENT), "no such file or directory")
    }
}
