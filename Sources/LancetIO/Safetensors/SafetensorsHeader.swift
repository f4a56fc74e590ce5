import Foundation

/// The JSON header of a safetensors file, parsed and validated against the data section it describes.
///
/// Validation follows the reference implementation (huggingface/safetensors): the header is a JSON object;
/// `__metadata__`, if present, maps strings to strings; every other key is a tensor with a known `dtype`,
/// a `shape` of non-negative integers and `data_offsets` `[begin, end]` whose span is exactly dtype × shape;
/// sorted by offset, the tensors tile the data section with no gap, no overlap and nothing left over.
/// Stricter than the reference: a key that appears twice in any object (a tensor listed twice) is refused,
/// where JSON parsers keep one copy silently.
struct SafetensorsHeader {
    /// `__metadata__`, empty when absent.
    var metadata: [String: String]
    /// Tensors sorted by data offset (then name, for the zero-sized ones sharing an offset).
    var tensors: [SafetensorsTensorInfo]

    /// The largest header accepted, as in the reference implementation (100 MB).
    static let maximumLength = 100_000_000

    /// Parses `json`, the header bytes of the file at `path` whose data section holds `dataSize` bytes.
    init(json: Data, dataSize: Int, path: String) throws {
        guard json.first == UInt8(ascii: "{") else {
            throw SafetensorsError(path, "header does not start with '{' (not a safetensors file?)")
        }
        if let (key, object) = JSONDuplicateKeys.first(in: json) {
            if object.isEmpty { throw SafetensorsError(path, tensor: key == "__metadata__" ? nil : key, "the header lists '\(key)' twice; a JSON parser would silently keep one of them") }
            throw SafetensorsError(path, "header: key '\(key)' appears twice in '\(object)'; a JSON parser would silently keep one of them")
        }
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: json)
        } catch let error as DecodingError {
            throw Self.translate(error, path: path)
        }
        metadata = raw.metadata
        var infos: [SafetensorsTensorInfo] = []
        infos.reserveCapacity(raw.entries.count)
        for (name, entry) in raw.entries {
            infos.append(try Self.validate(name: name, entry: entry, dataSize: dataSize, path: path))
        }
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var end = 0
        var previous: String?
        for info in infos {
            let begin = info.dataOffsets.lowerBound
            if begin < end {
                throw SafetensorsError(path, tensor: info.name, "data_offsets \(info.offsetText) overlap tensor '\(previous!)' (which ends at \(end))")
            }
            if begin > end {
                let after = previous.map { "after tensor '\($0)'" } ?? "at the start of the data section"
                throw SafetensorsError(path, tensor: info.name, "data_offsets \(info.offsetText) leave a gap of \(begin - end) bytes \(after)")
            }
            end = info.dataOffsets.upperBound
            previous = info.name
        }
        if end != dataSize {
            throw SafetensorsError(path, "\(dataSize - end) bytes after the last tensor's data are not described by the header")
        }
        tensors = infos
    }

    /// Checks one tensor entry's types and sizes.
    private static func validate(name: String, entry: RawEntry, dataSize: Int, path: String) throws -> SafetensorsTensorInfo {
        guard let dtype = SafetensorsDType(rawValue: entry.dtype) else {
            throw SafetensorsError(path, tensor: name, "unknown dtype '\(entry.dtype)' (known: \(SafetensorsDType.allCases.map(\.name).joined(separator: ", ")))")
        }
        var elements = 1
        for (i, extent) in entry.shape.enumerated() {
            guard extent >= 0 else { throw SafetensorsError(path, tensor: name, "shape[\(i)] is \(extent); extents must be non-negative") }
            let (p, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow, p < 1 << 48 else { throw SafetensorsError(path, tensor: name, "shape \(entry.shape) has too many elements") }
            elements = p
        }
        guard entry.dataOffsets.count == 2 else {
            throw SafetensorsError(path, tensor: name, "data_offsets must be [begin, end], got \(entry.dataOffsets.count) numbers")
        }
        let begin = entry.dataOffsets[0], end = entry.dataOffsets[1]
        guard begin >= 0, end >= begin else {
            throw SafetensorsError(path, tensor: name, "data_offsets [\(begin), \(end)] are not an ordered pair of non-negative offsets")
        }
        guard end <= dataSize else {
            throw SafetensorsError(path, tensor: name, "data_offsets [\(begin), \(end)] run past the end of the data section (\(dataSize) bytes); the file may be truncated")
        }
        guard let bytes = dtype.byteCount(elements: elements) else {
            throw SafetensorsError(path, tensor: name, "\(elements) elements of \(dtype.name) do not fill a whole number of bytes")
        }
        guard end - begin == bytes else {
            throw SafetensorsError(path, tensor: name, "data_offsets [\(begin), \(end)] span \(end - begin) bytes but \(dtype.name) × \(entry.shape) needs \(bytes)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: entry.shape, dataOffsets: begin..<end)
    }

    /// Turns a decoding error into a message naming the tensor and field.
    private static func translate(_ error: DecodingError, path: String) -> SafetensorsError {
        func split(_ codingPath: [any CodingKey]) -> (tensor: String?, field: String) {
            guard let first = codingPath.first else { return (nil, "") }
            var field = ""
            for key in codingPath.dropFirst() {
                if let i = key.intValue { field += "[\(i)]" } else { field += (field.isEmpty ? "" : ".") + key.stringValue }
            }
            if first.stringValue == "__metadata__" { return (nil, "__metadata__" + (field.isEmpty ? "" : "." + field)) }
            return (first.stringValue, field)
        }
        func make(_ codingPath: [any CodingKey], _ problem: String) -> SafetensorsError {
            let (tensor, field) = split(codingPath)
            return SafetensorsError(path, tensor: tensor, field.isEmpty ? problem : "\(field): \(problem)")
        }
        switch error {
        case let .keyNotFound(key, context):
            let (tensor, field) = split(context.codingPath)
            let full = field.isEmpty ? key.stringValue : "\(field).\(key.stringValue)"
            return SafetensorsError(path, tensor: tensor, "missing field '\(full)'")
        case let .typeMismatch(type, context):
            if context.codingPath.isEmpty { return SafetensorsError(path, "header is not a JSON object") }
            if context.codingPath.count == 1 {
                let what = context.codingPath[0].stringValue == "__metadata__" ? "an object of strings" : "an object with dtype, shape and data_offsets"
                return make(context.codingPath, "entry must be \(what)")
            }
            return make(context.codingPath, "expected \(describe(type))")
        case let .valueNotFound(type, context):
            return make(context.codingPath, "is null; expected \(describe(type))")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                let detail = context.underlyingError.map { "\($0)" } ?? context.debugDescription
                return SafetensorsError(path, "header is not valid JSON: \(detail)")
            }
            return make(context.codingPath, context.debugDescription)
        @unknown default:
            return SafetensorsError(path, "cannot parse header: \(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is [Int].Type, is [Any].Type: return "a list of integers"
        default: return "\(type)"
        }
    }
}

/// The header as decoded, before validation.
private struct RawHeader: Decodable {
    var metadata: [String: String] = [:]
    var entries: [String: RawEntry] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                if try container.decodeNil(forKey: key) { continue }
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries[key.stringValue] = try container.decode(RawEntry.self, forKey: key)
            }
        }
    }
}

/// One tensor entry as decoded.
private struct RawEntry: Decodable {
    var dtype: String
    var shape: [Int]
    var dataOffsets: [Int]

    enum CodingKeys: String, CodingKey {
        case dtype, shape
        case dataOffsets = "data_offsets"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dtype = try c.decodeLocated(String.self, forKey: .dtype)
        shape = try c.decodeLocated([Int].self, forKey: .shape)
        dataOffsets = try c.decodeLocated([Int].self, forKey: .dataOffsets)
    }
}
