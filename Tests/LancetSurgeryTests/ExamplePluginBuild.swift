import Foundation

/// Builds `Examples/ExamplePass` (the out-of-tree plugin) once per test process, in the configuration of the
/// tests, into `.build-example/` under the package root (git-ignored). `swift build` is incremental, so a
/// fresh build is reused and costs a second or two; the first one compiles Lancet again for the plugin.
enum ExamplePluginBuild {
    /// The package root (this file is `Tests/LancetSurgeryTests/ExamplePluginBuild.swift`).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The built plugin's absolute path, or the build's error.
    static let library: Result<String, Error> = Result { try build() }

    #if DEBUG
    static let configuration = "debug"
    #else
    static let configuration = "release"
    #endif

    /// A failed build, with its output.
    struct BuildFailure: Error, CustomStringConvertible {
        let status: Int32
        let output: String
        var description: String { "building Examples/ExamplePass exited with \(status):\n\(output)" }
    }

    /// Builds the plugin; when SwiftPM's incremental state is stale — it names a source file that no longer exists
    /// (a file of Lancet was moved since the last build), misses a module of a dependency Lancet added since, or
    /// misses a symbol of a file added to Lancet since (the incremental state keeps the old list of Lancet's files) —
    /// builds once more from a clean scratch folder (a real error fails that build too).
    static func build() throws -> String {
        let scratch = packageRoot.appendingPathComponent(".build-example")
        let stale = ["because of missing inputs", "no such module", "cannot find '"]
        do { return try build(scratch: scratch) } catch let failure as BuildFailure where stale.contains(where: failure.output.contains) {
            try FileManager.default.removeItem(at: scratch)
            return try build(scratch: scratch)
        }
    }

    static func build(scratch: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "build", "-c", configuration,
                             "--package-path", packageRoot.appendingPathComponent("Examples/ExamplePass").path,
                             "--scratch-path", scratch.path]
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-example-plugin-build-\(getpid()).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw BuildFailure(status: process.terminationStatus, output: String(output.suffix(4000)))
        }
        return scratch.appendingPathComponent(configuration).appendingPathComponent("libExamplePass.so").path
    }
}
