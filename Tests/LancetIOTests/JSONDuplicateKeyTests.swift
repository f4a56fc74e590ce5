import Foundation
import XCTest
@testable import LancetIO

/// A key given twice in one JSON object is refused, naming the key and the file: in a safetensors header,
/// a checkpoint index and a `config.json`. JSON parsers would silently keep one of the two.
final class JSONDuplicateKeyTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try makeTemporaryFolder("json-dup") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func entry(_ begin: Int, _ end: Int) -> String {
        "{\"dtype\":\"F32\",\"shape\":[\(( end - begin) / 4)],\"data_offsets\":[\(begin),\(end)]}"
    }

    private func file(header: String, dataBytes: Int, _ name: String = #function) throws -> String {
        let path = folder + "/" + name.filter { $0.isLetter || $0.isNumber } + ".safetensors"
        try writeBytes(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataBytes)), to: path)
        return path
    }

    func testTheScanFindsDuplicatesAtAnyDepthAndAfterUnescaping() {
        let cases: [(String, String?, String)] = [
            (#"{"a": 1, "b": 2}"#, nil, ""),
            (#"{"a": 1, "a": 2}"#, "a", ""),
            (#"{"a": 1, "\u0061": 2}"#, "a", ""),
            (#"{"x": {"k": "a", "k": "b"}}"#, "k", "x"),
            (#"{"x": [{"k": 1}, {"k": 2}]}"#, nil, ""),  // equal keys in sibling objects are fine
            (#"{"x": [{"k": 1, "k": 2}]}"#, "k", "x[]"),
            (#"{"s": "a\"b", "t": "{\"s\": 1}", "s\"": 3}"#, nil, ""),  // quotes and braces inside strings
            (#"{"a": {"b": {"c": 1}}, "b": 2}"#, nil, ""),  // the same name at different depths
            (#"{"a": 1, "a"#, nil, ""),  // an unterminated string is left for the decoder
        ]
        for (json, key, object) in cases {
            let found = JSONDuplicateKeys.first(in: Data(json.utf8))
            XCTAssertEqual(found?.key, key, json)
            if key != nil { XCTAssertEqual(found?.objectPath, object, json) }
        }
    }

    func testDeepNestingIsScannedWithoutRecursion() {
        let depth = 200_000
        let json = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        XCTAssertNil(JSONDuplicateKeys.first(in: Data(json.utf8)))
    }

    func testSafetensorsHeaderListingATensorTwiceIsRefused() throws {
        // Both copies describe valid, non-overlapping data; a parser keeping either would load "silently".
        let p = try file(header: "{\"w\":\(entry(0, 8)),\"v\":\(entry(8, 12)),\"w\":\(entry(0, 8))}", dataBytes: 12)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "lists 'w' twice")
    }

    func testSafetensorsHeaderWithAnEscapedDuplicateIsRefused() throws {
        let p = try file(header: "{\"w\":\(entry(0, 4)),\"\\u0077\":\(entry(0, 4))}", dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: p), path: p, tensor: "w", "twice")
    }

    func testSafetensorsDuplicateFieldsInsideAnEntryOrTheMetadataAreRefused() throws {
        let inEntry = try file(header: "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: inEntry), path: inEntry, "key 'dtype' appears twice in 'w'")
        let inMetadata = try file(header: "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"},\"w\":\(entry(0, 4))}", dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: inMetadata), path: inMetadata, "key 'a' appears twice in '__metadata__'")
        let twoMetadata = try file(header: "{\"__metadata__\":{},\"w\":\(entry(0, 4)),\"__metadata__\":{}}", dataBytes: 4)
        assertSafetensorsError(try SafetensorsFile(path: twoMetadata), path: twoMetadata, "lists '__metadata__' twice")
    }

    func testAValidHeaderStillOpens() throws {
        let p = try file(header: "{\"__metadata__\":{\"a\":\"1\"},\"w\":\(entry(0, 8)),\"v\":\(entry(8, 12))}", dataBytes: 12)
        XCTAssertEqual(try SafetensorsFile(path: p).tensorNames, ["w", "v"])
    }

    func testCheckpointIndexWithADuplicateWeightMapEntryIsRefused() throws {
        let index = folder + "/" + SafetensorsCheckpoint.indexFileName
        let text = #"{"metadata": {}, "weight_map": {"w": "a.safetensors", "w": "b.safetensors"}}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: index))
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: index, "key 'w' appears twice in 'weight_map'")
    }

    func testConfigGivingAFieldTwiceIsRefusedNamingTheField() throws {
        let text = """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "rms_norm_eps": 1e-5, "max_position_embeddings": 128, "vocab_size": 64,
         "num_hidden_layers": 3}
        """
        XCTAssertThrowsError(try LlamaFamilyConfig(json: Data(text.utf8), path: "dup/config.json")) { error in
            guard let e = error as? HuggingFaceConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.field, "num_hidden_layers")
            XCTAssertTrue(e.description.hasPrefix("dup/config.json: num_hidden_layers: appears twice"), "\(e)")
        }
        let once = text.replacingOccurrences(of: ",\n \"num_hidden_layers\": 3", with: "")
        XCTAssertEqual(try LlamaFamilyConfig(json: Data(once.utf8)).numHiddenLayers, 2)
    }
}
