import Foundation
import XCTest
import LancetTensor
@testable import LancetIO

final class SafetensorsCheckpointTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try makeTemporaryFolder("st-ckpt") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// Ten tensors of various shapes and sizes, and one larger than the shard limit used below.
    func sampleTensors() -> [(String, Tensor, SafetensorsDType)] {
        var rng = TestRNG(seed: 4)
        var out: [(String, Tensor, SafetensorsDType)] = []
        let shapes: [[Int]] = [[], [1], [0], [3, 5, 7], [4], [2, 3], [8], [1, 7], [5], [6, 2]]
        for (i, shape) in shapes.enumerated() {
            let dtype: SafetensorsDType = [.f32, .f16, .bf16][i % 3]
            let t = makeTensor(shape) {
                Float(Int(truncatingIfNeeded: rng.next() % 255) - 127) / 8  // 8 significant bits: exact in F16 and BF16
            }
            out.append(("model.layers.\(i).w", t, dtype))
        }
        return out
    }

    func testShardedRoundTripWithATinyShardLimit() throws {
        var writer = SafetensorsWriter(metadata: ["lancet.note": "sharded"])
        let tensors = sampleTensors()
        for (n, t, d) in tensors { writer.add(n, t, as: d) }
        let written = try writer.writeCheckpoint(to: folder + "/out", maxShardBytes: 64)

        let shardCount = written.count - 1
        XCTAssertGreaterThan(shardCount, 2)
        XCTAssertEqual(written.last, "model.safetensors.index.json")
        XCTAssertEqual(Array(written.dropLast()), (1...shardCount).map { SafetensorsWriter.shardFileName($0, of: shardCount) })
        XCTAssertEqual(SafetensorsWriter.shardFileName(1, of: 3), "model-00001-of-00003.safetensors")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out/model.safetensors"))

        let ckpt = try SafetensorsCheckpoint(directory: folder + "/out")
        try ckpt.validate()
        XCTAssertEqual(ckpt.totalSize, writer.dataByteCount)
        XCTAssertEqual(ckpt.tensorNames, tensors.map(\.0).sorted())
        XCTAssertEqual(ckpt.fileNames.count, shardCount)
        for (n, t, d) in tensors {
            XCTAssertEqual(try ckpt.info(n).dtype, d)
            XCTAssertEqual(try ckpt.tensor(n), t, n)
        }
        // Each shard respects the limit unless it holds a single larger tensor.
        for name in ckpt.fileNames {
            let shard = try ckpt.shard(named: name)
            let bytes = shard.tensors.reduce(0) { $0 + $1.byteCount }
            XCTAssertTrue(bytes <= 64 || shard.tensors.count == 1, "\(name): \(bytes) bytes in \(shard.tensors.count) tensors")
            XCTAssertEqual(shard.metadata["lancet.note"], "sharded")
        }
        // The index is pretty-printed JSON with sorted keys.
        let index = try String(contentsOfFile: folder + "/out/model.safetensors.index.json", encoding: .utf8)
        XCTAssertTrue(index.contains("\"total_size\" : \(writer.dataByteCount)"), index)
        XCTAssertTrue(index.range(of: "\"metadata\"")!.lowerBound < index.range(of: "\"weight_map\"")!.lowerBound)
    }

    func testRewritingACheckpointRemovesStaleFilesOfTheOldLayout() throws {
        var writer = SafetensorsWriter()
        for (n, t, d) in sampleTensors() { writer.add(n, t, as: d) }
        let dir = folder + "/out"
        let many = try writer.writeCheckpoint(to: dir, maxShardBytes: 64)
        let fewer = try writer.writeCheckpoint(to: dir, maxShardBytes: 300)
        XCTAssertLessThan(fewer.count, many.count)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), Set(fewer))
        let single = try writer.writeCheckpoint(to: dir, maxShardBytes: 1 << 20)
        XCTAssertEqual(single, ["model.safetensors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
        let ckpt = try SafetensorsCheckpoint(directory: dir)
        XCTAssertNil(ckpt.indexPath)
        XCTAssertEqual(try ckpt.tensor("model.layers.3.w"), sampleTensors()[3].1)
        XCTAssertThrowsError(try writer.writeCheckpoint(to: dir, maxShardBytes: 64, overwrite: false)) {
            XCTAssertTrue("\($0)".contains("already exists"), "\($0)")
        }
    }

    func testSingleFileFolderIsACheckpoint() throws {
        var writer = SafetensorsWriter()
        writer.add("a", Tensor(shape: [2], [1, 2]))
        try writer.write(to: folder + "/model.safetensors")
        let ckpt = try SafetensorsCheckpoint(directory: folder)
        XCTAssertEqual(ckpt.tensorNames, ["a"])
        XCTAssertEqual(try ckpt.tensor("a").scalars, [1, 2])
        assertSafetensorsError(try ckpt.tensor("b"), path: folder + "/model.safetensors", tensor: "b", "no such tensor")
    }

    func testFolderWithoutACheckpointIsAnError() {
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: folder, "no model.safetensors or model.safetensors.index.json")
    }

    /// Writes shard files holding the given tensor names, and an index with `weightMap`.
    func makeCheckpoint(shards: [String: [String]], weightMap: [String: String]) throws {
        for (file, names) in shards {
            var w = SafetensorsWriter()
            for n in names { w.add(n, Tensor(shape: [1], [1])) }
            try w.write(to: folder + "/" + file)
        }
        let map = weightMap.keys.sorted().map { "\"\($0)\": \"\(weightMap[$0]!)\"" }.joined(separator: ", ")
        try Data("{\"metadata\": {\"total_size\": 8}, \"weight_map\": {\(map)}}".utf8).write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
    }

    func testIndexReferringToAMissingFileIsAnError() throws {
        try makeCheckpoint(shards: ["s1.safetensors": ["a"]], weightMap: ["a": "s1.safetensors", "b": "s2.safetensors"])
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: folder + "/model.safetensors.index.json", "refers to 's2.safetensors' (e.g. for tensor 'b'), which does not exist")
    }

    func testTensorMissingFromItsShardIsAnError() throws {
        try makeCheckpoint(shards: ["s1.safetensors": ["a"], "s2.safetensors": ["c"]], weightMap: ["a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"])
        let ckpt = try SafetensorsCheckpoint(directory: folder)
        XCTAssertEqual(try ckpt.tensor("c").scalars, [1], "other shards stay usable")
        assertSafetensorsError(try ckpt.tensor("a"), path: folder + "/s1.safetensors", tensor: "b", "does not contain it")
    }

    func testDuplicateTensorAcrossShardsIsAnError() throws {
        try makeCheckpoint(shards: ["s1.safetensors": ["a", "b"], "s2.safetensors": ["b"]], weightMap: ["a": "s1.safetensors", "b": "s2.safetensors"])
        let ckpt = try SafetensorsCheckpoint(directory: folder)
        assertSafetensorsError(try ckpt.validate(), path: folder + "/s1.safetensors", tensor: "b", "duplicate: stored in this shard and in 's2.safetensors'")
    }

    func testTensorNotListedInTheIndexIsAnError() throws {
        try makeCheckpoint(shards: ["s1.safetensors": ["a", "x"]], weightMap: ["a": "s1.safetensors"])
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder).tensor("a"), path: folder + "/s1.safetensors", tensor: "x", "not listed in the index")
    }

    func testMalformedIndexIsAnError() throws {
        let index = folder + "/model.safetensors.index.json"
        try Data(#"{"metadata": {}, "weight_map": {"a": 3}}"#.utf8).write(to: URL(fileURLWithPath: index))
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: index, "weight_map.a")
        try Data(#"{"metadata": {}}"#.utf8).write(to: URL(fileURLWithPath: index))
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: index, "missing field 'weight_map'")
        try Data(#"{"weight_map": {"a": "../escape.safetensors"}}"#.utf8).write(to: URL(fileURLWithPath: index))
        assertSafetensorsError(try SafetensorsCheckpoint(directory: folder), path: index, tensor: "a", "not inside the checkpoint folder")
    }
}
