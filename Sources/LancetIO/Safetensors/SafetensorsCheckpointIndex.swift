import Foundation

/// The contents of `model.safetensors.index.json`: which shard holds each tensor, and the total data size.
struct SafetensorsCheckpointIndex: Codable, Equatable {
    /// `metadata.total_size`: bytes of tensor data over all shards, if given.
    var totalSize: Int?
    /// Tensor name → shard file name.
    var weightMap: [String: String]

    init(totalSize: Int?, weightMap: [String: String]) {
        self.totalSize = totalSize
        self.weightMap = weightMap
    }

    enum CodingKeys: String, CodingKey {
        case metadata
        case weightMap = "weight_map"
    }

    enum MetadataKeys: String, CodingKey {
        case totalSize = "total_size"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weightMap = try c.decode([String: String].self, forKey: .weightMap)
        totalSize = nil
        if c.contains(.metadata), try !c.decodeNil(forKey: .metadata) {
            let m = try c.nestedContainer(keyedBy: MetadataKeys.self, forKey: .metadata)
            // Some exporters write the size as a float (e.g. 2.69e8); accept any integral number.
            if let n = try? m.decodeIfPresent(Int.self, forKey: .totalSize) {
                totalSize = n
            } else if let d = try m.decodeIfPresent(Double.self, forKey: .totalSize) {
                guard d >= 0, d < 9e15, d.rounded() == d else {
                    throw DecodingError.dataCorruptedError(forKey: .totalSize, in: m, debugDescription: "must be a non-negative integer, got \(d)")
                }
                totalSize = Int(d)
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        var m = c.nestedContainer(keyedBy: MetadataKeys.self, forKey: .metadata)
        try m.encodeIfPresent(totalSize, forKey: .totalSize)
        try c.encode(weightMap, forKey: .weightMap)
    }

    /// Pretty-printed JSON with sorted keys, as transformers writes it.
    func encodedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Reads and checks the index at `path`.
    static func load(path: String) throws -> SafetensorsCheckpointIndex {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError(path, "cannot read the index file")
        }
        if let (key, object) = JSONDuplicateKeys.first(in: data) {
            let within = object.isEmpty ? "the index" : "'\(object)'"
            throw SafetensorsError(path, "key '\(key)' appears twice in \(within); a JSON parser would silently keep one of them")
        }
        let index: SafetensorsCheckpointIndex
        do { index = try JSONDecoder().decode(SafetensorsCheckpointIndex.self, from: data) } catch let e as DecodingError {
            throw SafetensorsError(path, "not a valid index: \(describe(e))")
        }
        for (tensor, file) in index.weightMap {
            if file.isEmpty || file.hasPrefix("/") || file.split(separator: "/").contains("..") {
                throw SafetensorsError(path, tensor: tensor, "weight_map names the file '\(file)', which is not inside the checkpoint folder")
            }
        }
        return index
    }

    private static func describe(_ e: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch e {
        case let .keyNotFound(key, c): return "missing field '\((c.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))'"
        case let .typeMismatch(_, c): return c.codingPath.isEmpty ? "not a JSON object" : "'\(field(c.codingPath))': wrong type (\(c.debugDescription))"
        case let .valueNotFound(_, c): return "'\(field(c.codingPath))' is null"
        case let .dataCorrupted(c): return c.codingPath.isEmpty ? "not valid JSON" : "'\(field(c.codingPath))': \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
