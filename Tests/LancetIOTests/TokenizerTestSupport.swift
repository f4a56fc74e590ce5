import Foundation
import XCTest
@testable import LancetIO

/// Shared inputs of the tokenizer tests: the SmolLM2 GGUF (skipped when absent), committed fixtures,
/// and the reference files under `../shared/reference`.
enum TokenizerTestSupport {
    static let modelName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Where the model may be: `$LANCET_MODEL`, or the package's `models/` (which `make test` fills).
    static var modelCandidates: [String] {
        var c: [String] = []
        if let env = ProcessInfo.processInfo.environment["LANCET_MODEL"] { c.append(env) }
        c.append(packageRoot.appendingPathComponent("models/\(modelName)").path)
        return c
    }

    private static let loaded: Result<Tokenizer, Error>? = {
        guard let path = modelCandidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        return Result { try Tokenizer(gguf: GGUFFile(path: path)) }
    }()

    /// The SmolLM2 tokenizer read from the GGUF, or a skip when the model is not on this machine.
    static func smolLM2() throws -> Tokenizer {
        guard let loaded else { throw XCTSkip("model \(modelName) not found (set LANCET_MODEL); looked in \(modelCandidates)") }
        return try loaded.get()
    }

    /// A committed fixture file.
    static func fixture(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            XCTFail("fixture \(name) missing from the test bundle")
            throw XCTSkip("fixture \(name) missing")
        }
        return url
    }

    /// The shared reference folder (`../shared/reference` from the workspace), if present.
    static func sharedFile(_ relative: String) -> URL? {
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["LANCET_SHARED"] { candidates.append(URL(fileURLWithPath: env)) }
        candidates.append(packageRoot.deletingLastPathComponent().appendingPathComponent("shared"))
        return candidates.map { $0.appendingPathComponent(relative) }.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Whitespace-separated integers.
    static func parseIDs(_ text: String) -> [Int32] {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," || $0 == "[" || $0 == "]" })
            .map { Int32($0)! }
    }

    /// The decompressed bytes of a gzip file (Foundation on Linux cannot gunzip; this runs `gzip -dc`).
    static func gunzip(_ url: URL) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-dc", url.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("gzip -dc \(url.path) failed with status \(p.terminationStatus)") }
        return data
    }

    /// The first index where two id sequences differ, with a little context, for failure messages.
    static func firstDifference(_ a: [Int32], _ b: [Int32]) -> String? {
        guard a != b else { return nil }
        let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let lo = max(0, i - 3)
        return "lengths \(a.count) vs \(b.count); first difference at \(i): \(Array(a[lo..<min(a.count, i + 5)])) vs \(Array(b[lo..<min(b.count, i + 5)]))"
    }
}
