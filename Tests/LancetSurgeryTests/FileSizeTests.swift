import Foundation
import LancetIO
import XCTest

/// The run summary's file sizes follow symbolic links: a model given as a link, or a folder of links (a Hugging Face
/// cache snapshot), counts the bytes the links point to.
final class FileSizeTests: XCTestCase {
    func testSizesFollowSymbolicLinks() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("lancet-size-\(getpid())")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.gguf")
        try Data(repeating: 7, count: 1000).write(to: file)
        try fm.createSymbolicLink(atPath: dir.appendingPathComponent("link.gguf").path, withDestinationPath: file.path)
        let folder = dir.appendingPathComponent("snapshot")
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: folder.appendingPathComponent("model.safetensors").path, withDestinationPath: file.path)
        try Data(repeating: 1, count: 24).write(to: folder.appendingPathComponent("config.json"))
        XCTAssertEqual(FileSize.bytes(at: file.path), 1000)
        XCTAssertEqual(FileSize.bytes(at: dir.appendingPathComponent("link.gguf").path), 1000)
        XCTAssertEqual(FileSize.bytes(at: folder.path), 1024)
        XCTAssertNil(FileSize.bytes(at: dir.appendingPathComponent("missing").path))
    }
}
