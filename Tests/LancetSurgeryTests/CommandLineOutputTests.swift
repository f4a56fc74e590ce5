import Foundation
import Lancet
import XCTest

/// The `lancet` tool, run as a user runs it, on outputs it must refuse before doing any work.
final class CommandLineOutputTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// The built `lancet` of the tests' configuration.
    static var tool: String {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        return ExamplePluginBuild.packageRoot.appendingPathComponent(".build/\(configuration)/lancet").path
    }

    /// Runs `lancet arguments…`; returns its exit status and standard error.
    func lancet(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let run = try LancetTool.run(arguments)
        return (run.status, run.stderr)
    }

    func testValidateRefusesAnOutputWhoseFolderCannotBeMade() throws {
        try TinyLlama.make(seed: 2).save(to: folder + "/tiny.gguf")
        let missing = "/proc/lancet-\(UUID().uuidString)"
        let recipe = folder + "/recipe.yaml"
        try Data("""
            lancet: 1
            model: tiny.gguf
            stages:
              - name: prune
                passes:
                  - magnitude: {sparsity: 0.5}
            output: \(missing)/o.gguf

            """.utf8).write(to: URL(fileURLWithPath: recipe))
        let (status, stderr) = try lancet(["validate", recipe])
        XCTAssertEqual(status, 64, stderr)
        XCTAssertTrue(stderr.contains("output: cannot create the folder \(missing): no such file or directory"), stderr)
        XCTAssertFalse(stderr.contains("NSCocoaErrorDomain"), stderr)
    }

    func testApplyRefusesAtOnceAnOutputAnotherRunIsWriting() throws {
        try TinyLlama.make(seed: 2).save(to: folder + "/tiny.gguf")
        let output = folder + "/out.gguf"
        let lock = try OutputLock.acquire(output: output)
        defer { lock.release() }
        let started = Date()
        let (status, stderr) = try lancet(["apply", folder + "/tiny.gguf", "-p", "magnitude(sparsity=0.5)", "-o", output])
        XCTAssertEqual(status, 64, stderr)
        XCTAssertTrue(stderr.contains("output \(output) is being written by process \(getpid())"), stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".checkpoint"))
    }
}
