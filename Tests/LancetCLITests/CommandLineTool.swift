import Foundation
import Lancet
import LancetFuzz
import XCTest

/// The built `lancet` of the tests' configuration, run as a user runs it, and the small inputs the command-line
/// tests give it: the fuzz suite's tiny model with a tokenizer (GGUF), a short text, and a recipe.
enum CommandLineTool {
    /// The package root (three levels above this file).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built executable.
    static var path: String {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        return packageRoot.appendingPathComponent(".build/\(configuration)/lancet").path
    }

    /// What one run printed and how it ended.
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `lancet arguments…` in `folder`; with `fileSizeLimitBlocks`, under `ulimit -f` (with SIGXFSZ ignored,
    /// so a write past the limit fails with EFBIG instead of killing the process), to make a write fail part-way.
    static func run(_ arguments: [String], in folder: String, fileSizeLimitBlocks: Int? = nil) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkip("\(path) is not built") }
        if let limit = fileSizeLimitBlocks {
            return try run(executable: "/bin/sh", ["-c", "trap '' XFSZ; ulimit -f \(limit) && exec \"$0\" \"$@\"", path] + arguments, in: folder)
        }
        return try run(executable: path, arguments, in: folder)
    }

    /// Runs any executable with `arguments` in `folder`, capturing what it prints.
    static func run(executable: String, _ arguments: [String], in folder: String) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        // Files rather than pipes: nothing to drain while the process runs.
        let capture = NSTemporaryDirectory() + "lancet-capture-\(UUID().uuidString)"
        for suffix in [".out", ".err"] { _ = FileManager.default.createFile(atPath: capture + suffix, contents: nil) }
        defer { for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: capture + suffix) } }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: capture + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: capture + ".err"))
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        func read(_ suffix: String) -> String { String(decoding: FileManager.default.contents(atPath: capture + suffix) ?? Data(), as: UTF8.self) }
        return Result(status: process.terminationStatus, stdout: read(".out"), stderr: read(".err"))
    }

    /// Writes the fixtures into `folder`: `model.gguf` (tiny, with a tokenizer), `text.txt`, `eval.txt`,
    /// `garbage.gguf` (not a GGUF file) and `recipe.yaml` (valid, writing `out/pruned.gguf`).
    static func writeFixtures(into folder: String) throws {
        let fixtures = try shared()
        func write(_ name: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        try write("model.gguf", fixtures.ggufF32)
        try write("text.txt", fixtures.text)
        try write("eval.txt", Array(String(repeating: "Then the sun came out and the cat went back to the mat. ", count: 12).utf8))
        try write("garbage.gguf", Array("this is not a model".utf8))
        try write("recipe.yaml", Array(fixtures.recipe.utf8))
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cached: FuzzFixtures?

    /// The fixtures, made once per test process.
    static func shared() throws -> FuzzFixtures {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let made = try FuzzFixtures.make(scratch: NSTemporaryDirectory())
        cached = made
        return made
    }
}
