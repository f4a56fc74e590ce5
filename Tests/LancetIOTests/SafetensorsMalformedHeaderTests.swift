import Foundation
import XCTest
@testable import LancetIO

/// Every malformed file is built byte by byte and must throw a `SafetensorsError` naming the file,
/// the tensor when one is at fault, and the problem.
final class SafetensorsMalformedHeaderTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try makeTemporaryFolder("st-bad") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// Writes `bytes` to a new file and returns its path.
    func file(_ bytes: [UInt8], _ name: String = #function) throws -> String {
        let path = folder + "/" + name.filter { $0.isLetter || $0.isNumber } + ".safetensors"
        try writeBytes(bytes, to: path)
        return path
    }

    /// A file whose header is `header` followed by `dataBytes` zero bytes.
    func file(header: String, dataBytes: Int = 0, _ name: String = #function) throws -> String {
        try file(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataBytes)), name)
    }

    func testRejectsAFileShorterThanTheLengthField() throws {
        let p = try file([1, 2, 3])
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "less than the 8-byte header length")
    }

    func testRejectsAnEmptyFile() throws {
        let p = try file([])
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "only 0 bytes")
    }

    func testRejectsAHeaderLengthTooSmall() throws {
        let p = try file(safetensorsBytes(header: "{", headerLength: 1))
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "header length is 1")
    }

    func testRejectsAnImplausiblyLargeHeaderLength() throws {
        let p = try file(safetensorsBytes(header: "{}", headerLength: 1 << 40))
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "limit")
    }

    func testRejectsAHeaderLengthPastTheEndOfTheFile() throws {
        let p = try file(safetensorsBytes(header: "{}", headerLength: 64))
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "runs past the end of the file")
    }

    func testRejectsAHeaderThatIsNotAnObject() throws {
        let p = try file(header: "[1, 2]")
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "does not start with '{'")
    }

    func testRejectsMalformedJSON() throws {
        let p = try file(header: #"{"x": {"dtype": "F32",}"#)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "not valid JSON")
    }

    func testRejectsAnEntryThatIsNotAnObject() throws {
        let p = try file(header: #"{"x": 3}"#)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "x", "entry must be an object")
    }

    func testRejectsEachMissingField() throws {
        let fields = [#""dtype":"F32""#, #""shape":[1]"#, #""data_offsets":[0,4]"#]
        for (i, missing) in ["dtype", "shape", "data_offsets"].enumerated() {
            let kept = fields.enumerated().filter { $0.offset != i }.map(\.element).joined(separator: ",")
            let p = try file(header: "{\"w\":{\(kept)}}", dataBytes: 4, "missing\(missing)")
            assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "missing field '\(missing)'")
        }
    }

    func testRejectsFieldsOfTheWrongType() throws {
        let cases: [(String, String)] = [
            (#"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, "dtype: expected a string"),
            (#"{"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, "shape[0]: expected an integer"),
            (#"{"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}"#, "shape: expected a list of integers"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}"#, "data_offsets[1]: expected an integer"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#, "data_offsets: expected an integer, got a number it cannot hold"),
            (#"{"w":{"dtype":"F32","shape":[null],"data_offsets":[0,4]}}"#, "shape[0]"),
        ]
        for (i, (header, fragment)) in cases.enumerated() {
            let p = try file(header: header, dataBytes: 4, "wrongtype\(i)")
            assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", fragment)
        }
    }

    func testRejectsMetadataThatIsNotStringToString() throws {
        let p = try file(header: #"{"__metadata__":{"format":"pt","n":3}}"#)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "__metadata__.n: expected a string")
        let q = try file(header: #"{"__metadata__":[1]}"#, "metadatalist")
        assertSafetensorsError(try SafetensorsFile(path: q), path: q, "__metadata__: entry must be an object of strings")
    }

    func testRejectsAnUnknownDType() throws {
        let p = try file(header: #"{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "unknown dtype 'F7'")
    }

    func testRejectsANegativeExtent() throws {
        let p = try file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "shape[0] is -1")
    }

    func testRejectsOffsetsThatAreNotAnOrderedPair() throws {
        let p = try file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "not an ordered pair")
        let q = try file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, dataBytes: 8, "threeoffsets")
        assertSafetensorsError(try SafetensorsFile(path: q), path: q, tensor: "w", "got 3 numbers")
    }

    func testRejectsASpanThatDoesNotMatchDTypeTimesShape() throws {
        let p = try file(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, dataBytes: 20)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "span 20 bytes but F32 × [2, 3] needs 24")
    }

    func testRejectsDataPastTheEndOfTheFile() throws {
        let p = try file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 12)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "run past the end of the data section")
    }

    func testRejectsOverlappingTensors() throws {
        let p = try file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "b", "overlap tensor 'a'")
        // A zero-sized tensor inside another one overlaps it too.
        let q = try file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#, dataBytes: 8, "zerooverlap")
        assertSafetensorsError(try SafetensorsFile(path: q), path: q, tensor: "z", "overlap tensor 'a'")
    }

    func testRejectsAGapBetweenTensors() throws {
        let p = try file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, dataBytes: 12)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "b", "gap of 4 bytes after tensor 'a'")
        let q = try file(header: #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8, "leadinggap")
        assertSafetensorsError(try SafetensorsFile(path: q), path: q, tensor: "b", "at the start of the data section")
    }

    func testRejectsTrailingBytesAfterTheLastTensor() throws {
        let p = try file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 7)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "3 bytes after the last tensor's data")
    }

    func testRejectsAMissingFile() {
        let p = folder + "/absent.safetensors"
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, "No such file")
    }

    func testAcceptsZeroSizedTensorsAndSpacePaddedHeaders() throws {
        let header = #"{"z":{"dtype":"BF16","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}    "#
        let p = try file(safetensorsBytes(header: header, data: withUnsafeBytes(of: Float(2.5).bitPattern.littleEndian) { Array($0) }))
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(f.tensorNames, ["z", "s"])
        XCTAssertEqual(try f.tensor("z").shape, [0, 3])
        XCTAssertEqual(try f.tensor("s").scalars, [2.5])
        XCTAssertEqual(try f.tensor("s").shape, [])
    }
}
