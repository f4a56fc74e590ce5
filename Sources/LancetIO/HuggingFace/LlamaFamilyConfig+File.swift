import Foundation

extension LlamaFamilyConfig {
    /// Reads and validates the `config.json` at `path`. Every failure is a `HuggingFaceConfigError` naming the
    /// file, the field (JSON path) and the problem: unreadable or empty file, malformed JSON, a field of the
    /// wrong type, a missing required field, a field given twice, inconsistent sizes, an unsupported `model_type`.
    public static func load(path: String) throws -> LlamaFamilyConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HuggingFaceConfigError(path, field: "", "cannot read the file")
        }
        return try LlamaFamilyConfig(json: data, path: path)
    }

    /// Decodes and validates `json`; `path` names the source in errors.
    public init(json: Data, path: String = "config.json") throws {
        guard json.contains(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
            throw HuggingFaceConfigError(path, field: "", "the file is empty")
        }
        if let (key, object) = JSONDuplicateKeys.first(in: json) {
            throw HuggingFaceConfigError(path, field: object.isEmpty ? key : object + "." + key, "appears twice; a JSON parser would silently keep one of the values")
        }
        do {
            self = try JSONDecoder().decode(LlamaFamilyConfig.self, from: json)
        } catch let error as DecodingError {
            throw HuggingFaceConfigError(error, path: path)
        }
    }

    /// The config as pretty-printed JSON with sorted keys and a final newline, after validation
    /// (throws a `HuggingFaceConfigError` naming the inconsistent field; `path` names the target in it).
    public func jsonData(path: String = "config.json") throws -> Data {
        if let (field, reason) = problem() { throw HuggingFaceConfigError(path, field: field, reason) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Writes the config to `path` atomically (see `jsonData`). With `overwrite: false` an existing file is an error.
    public func write(to path: String, overwrite: Bool = true) throws {
        let data = try jsonData(path: path)
        try AtomicFile.write(to: path, overwrite: overwrite) { try $0.write(Array(data)) }
    }
}
