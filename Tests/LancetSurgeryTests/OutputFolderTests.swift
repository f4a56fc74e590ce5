import Foundation
import Lancet
import XCTest

/// Whether an output can be written is checked up front, in words, and the check leaves nothing behind.
final class OutputFolderTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-output-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testAnOutputWhoseFolderCannotBeMadeIsRefusedNamingTheFolder() {
        let missing = "/proc/lancet-\(UUID().uuidString)"
        let problem = OutputFolder.problem(writing: missing + "/sub/o.gguf")
        XCTAssertEqual(problem, "cannot create the folder \(missing): no such file or directory")
    }

    func testAnOutputInAFolderThatAcceptsNoFilesIsRefused() throws {
        guard FileManager.default.fileExists(atPath: "/sys/kernel") else { throw XCTSkip("no /sys here") }
        let problem = try XCTUnwrap(OutputFolder.problem(writing: "/sys/o.gguf"))
        XCTAssertTrue(problem.hasPrefix("cannot create files in the folder /sys: "), problem)
    }

    func testAnOutputUnderAFileIsRefused() throws {
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/file"))
        XCTAssertEqual(OutputFolder.problem(writing: folder + "/file/o.gguf"), "cannot create the folder \(folder)/file: \(folder)/file is not a folder")
    }

    func testWritableAndCreatableOutputsPassAndTheCheckLeavesNothingBehind() throws {
        XCTAssertNil(OutputFolder.problem(writing: folder + "/o.gguf"))
        XCTAssertNil(OutputFolder.problem(writing: folder + "/new/deeper/o.gguf"))
        XCTAssertNil(OutputFolder.problem(writing: folder + "/hf-folder/"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testCreateMakesMissingFoldersAndSaysWhichOneFailed() throws {
        XCTAssertEqual(try OutputFolder.create(folder + "/a/b"), [folder + "/a", folder + "/a/b"])
        XCTAssertEqual(try OutputFolder.create(folder + "/a/b"), [])
        let missing = "/proc/lancet-\(UUID().uuidString)"
        XCTAssertThrowsError(try OutputFolder.create(missing + "/x")) { e in
            XCTAssertEqual("\(e)", "\(missing): cannot create this folder: no such file or directory")
        }
    }
}
