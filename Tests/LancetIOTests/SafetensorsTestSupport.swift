import Foundation
import XCTest
import LancetTensor
@testable import LancetIO

/// A fresh temporary folder for one test, removed by the returned cleanup.
func makeTemporaryFolder(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The bytes of a safetensors file: the 8-byte little-endian length (of `header`, unless `headerLength`
/// overrides it), the header text, then `data`.
func safetensorsBytes(header: String, headerLength: UInt64? = nil, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    let n = headerLength ?? UInt64(h.count)
    return withUnsafeBytes(of: n.littleEndian) { Array($0) } + h + data
}

/// Writes `bytes` to `path`.
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A deterministic pseudo-random generator (SplitMix64) for test data.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A tensor of `shape` whose elements are produced by `value`.
func makeTensor(_ shape: [Int], _ value: () -> Float) -> Tensor {
    Tensor(shape: shape) { buf in for i in 0..<buf.count { buf[i] = value() } }
}

/// Asserts that `body` throws a `SafetensorsError` about `path` (and `tensor`, when given) whose reason contains `fragment`.
func assertSafetensorsError<T>(_ body: @autoclosure () throws -> T, path: String, tensor: String? = nil, _ fragment: String,
                                file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let e = error as? SafetensorsError else { return XCTFail("not a SafetensorsError: \(error)", file: file, line: line) }
        XCTAssertEqual(e.path, path, "\(e)", file: file, line: line)
        if let tensor { XCTAssertEqual(e.tensor, tensor, "\(e)", file: file, line: line) }
        XCTAssertTrue(e.reason.contains(fragment), "expected '\(fragment)' in: \(e)", file: file, line: line)
        XCTAssertTrue(e.description.contains(path), file: file, line: line)
    }
}
