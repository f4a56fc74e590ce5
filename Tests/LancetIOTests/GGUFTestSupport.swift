import Foundation
import XCTest
@testable import LancetIO
import LancetTensor

/// Shared helpers for the GGUF tests: the reference model's location, a seeded generator, a byte builder
/// for hand-made GGUF headers, and error assertions.
enum GGUFTestSupport {
    /// The reference model: `$LANCET_MODEL`, else `models/SmolLM2-135M-Instruct.Q4_1.gguf` in the package.
    static var modelPath: String {
        if let p = ProcessInfo.processInfo.environment["LANCET_MODEL"] { return p }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    /// Opens the reference model, or skips the test when it has not been fetched (`make model`).
    static func openModel() throws -> GGUFFile {
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw XCTSkip("reference model not found at \(modelPath); run `make model`")
        }
        return try GGUFFile(path: modelPath)
    }

    /// A fresh path in the temporary folder.
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("lancet-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)").path
    }

    /// The IEEE half-precision value of a bit pattern.
    static func f16(_ bits: UInt16) -> Double { Double(Float(Float16(bitPattern: bits))) }
}

/// SplitMix64: a tiny seeded generator, so every random test is reproducible from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds GGUF bytes field by field, so tests can write well-formed and malformed headers alike.
struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    /// A GGUF string: u64 length, then the raw bytes (not necessarily UTF-8).
    mutating func string(_ raw: [UInt8]) { u64(UInt64(raw.count)); bytes.append(contentsOf: raw) }
    mutating func string(_ s: String) { string(Array(s.utf8)) }
    /// The fixed header: magic, version, tensor count, metadata count.
    mutating func header(magic: String = "GGUF", version: UInt32 = 3, tensors: UInt64, metadata: UInt64) {
        bytes.append(contentsOf: Array(magic.utf8))
        u32(version)
        u64(tensors)
        u64(metadata)
    }
    /// One tensor description.
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }
    /// Zero bytes up to a multiple of `alignment`.
    mutating func pad(_ alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}

/// Asserts that `body` throws a `GGUFError` about `path` whose reason contains every one of `phrases`.
func assertGGUFError<T>(_ body: @autoclosure () throws -> T, path: String, _ phrases: String..., file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a GGUFError containing \(phrases)", file: file, line: line)
    } catch let e as GGUFError {
        XCTAssertEqual(e.path, path, file: file, line: line)
        XCTAssertTrue("\(e)".hasPrefix(path + ": "), "\(e)", file: file, line: line)
        for p in phrases { XCTAssertTrue(e.reason.contains(p), "'\(e.reason)' lacks '\(p)'", file: file, line: line) }
    } catch {
        XCTFail("expected a GGUFError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// Parses `bytes` as a GGUF file held in memory, named `path` in errors.
func parseGGUF(_ bytes: [UInt8], path: String = "memory.gguf") throws -> GGUFFile {
    try GGUFFile(mapped: MappedFile(copying: bytes, path: path))
}
