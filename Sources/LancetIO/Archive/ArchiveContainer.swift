import Foundation
import LancetTensor

/// The file an archive is read from: its metadata texts, its tensors and mask bytes, its tokenizer. A GGUF file or a
/// safetensors file (`ModelArchive`).
protocol ArchiveContainer {
    /// The file's path, for errors.
    var path: String { get }
    /// The metadata under `key` as text (an integer as its decimal text), or nil.
    func text(_ key: String) -> String?
    /// The provenance lines (empty when none are stored).
    func provenance() throws -> [String]
    /// The names of every stored tensor.
    var storedTensorNames: [String] { get }
    /// Whether a tensor called `name` is stored.
    func hasTensor(_ name: String) -> Bool
    /// The tensor called `name` as F32.
    func tensor(_ name: String) throws -> Tensor
    /// The stored keep-bytes of the mask of parameter `name` (1 = kept), checked to fit the parameter's `shape`, or nil
    /// when the parameter has no mask.
    func maskBytes(of name: String, shape: [Int]) throws -> [UInt8]?
    /// The tokenizer the file keeps, or nil.
    func tokenizer() throws -> Tokenizer?
}

extension GGUFFile: ArchiveContainer {
    func text(_ key: String) -> String? { string(key) ?? int(key).map(String.init) }

    func provenance() throws -> [String] { metadata["lancet.provenance"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    var storedTensorNames: [String] { tensors.map(\.name) }

    func hasTensor(_ name: String) -> Bool { info(name) != nil }

    /// A GGUF archive stores a mask flat: I8, one element per weight.
    func maskBytes(of name: String, shape: [Int]) throws -> [UInt8]? {
        guard let info = info(name + ".mask") else { return nil }
        let count = Tensor.elementCount(shape)
        guard info.type == .i8, info.elementCount == count else {
            throw ModelImportError(path, "tensor '\(name).mask' must be I8 with \(count) elements (one per weight), not \(info.type.name) with \(info.elementCount)")
        }
        return Array(rawBytes(of: info))
    }

    func tokenizer() throws -> Tokenizer? { metadata["tokenizer.ggml.model"] == nil ? nil : try Tokenizer(gguf: self) }
}

extension SafetensorsFile: ArchiveContainer {
    func text(_ key: String) -> String? { metadata[key] }

    func provenance() throws -> [String] {
        guard let text = metadata["lancet.provenance"] else { return [] }
        guard let lines = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else {
            throw ModelImportError(path, "metadata 'lancet.provenance' must be a JSON array of strings")
        }
        return lines
    }

    var storedTensorNames: [String] { tensorNames }

    func hasTensor(_ name: String) -> Bool { contains(name) }

    /// A safetensors archive stores a mask in its parameter's shape, U8.
    func maskBytes(of name: String, shape: [Int]) throws -> [UInt8]? {
        guard let info = info(name + ".mask") else { return nil }
        guard info.dtype == .u8, info.shape == shape else {
            throw ModelImportError(path, "tensor '\(name).mask' must be U8 of the parameter's shape \(shape), not \(info.dtype.name) \(info.shape)")
        }
        return Array(rawBytes(of: info))
    }

    func tokenizer() throws -> Tokenizer? {
        guard let text = metadata[ModelArchive.tokenizerKey] else { return nil }
        guard let pairs = GGUFValue.pairs(fromJSONText: text) else {
            throw ModelImportError(path, "metadata '\(ModelArchive.tokenizerKey)' is not a JSON list of [key, tagged GGUF value] pairs")
        }
        return try Tokenizer(ggufMetadata: Dictionary(pairs, uniquingKeysWith: { _, last in last }), source: path + " (\(ModelArchive.tokenizerKey))")
    }
}
