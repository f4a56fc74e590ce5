import Foundation
import LancetTensor

/// A Hugging Face safetensors checkpoint folder: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json`. Tensors are served by name across shards.
///
/// Like transformers, a folder holding `model.safetensors` is read from that file even if an index is
/// also present. Shards are opened (memory-mapped and validated) lazily, on the first request for one of
/// their tensors; opening a shard checks it against the index: every tensor the index assigns to it is
/// present, and every tensor it holds is assigned to it (a tensor stored in two shards, or one the index
/// does not list, is an error). `validate()` opens every shard to run all checks at once.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    /// The single-file checkpoint's name.
    public static let singleFileName = "model.safetensors"
    /// The sharded checkpoint's index name.
    public static let indexFileName = "model.safetensors.index.json"

    /// The folder.
    public let directory: String
    /// Tensor name → file name (relative to `directory`) that holds it.
    public let weightMap: [String: String]
    /// The file names of the checkpoint, sorted.
    public let fileNames: [String]
    /// The index's `metadata.total_size` (nil without an index, or if the index omits it).
    public let totalSize: Int?
    /// The index path, or nil for a single-file checkpoint.
    public let indexPath: String?
    private var opened: [String: SafetensorsFile] = [:]
    private let lock = NSLock()

    /// Opens the checkpoint in `directory`. Throws if the folder has neither file, the index is malformed,
    /// or the index names a file that does not exist.
    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory + "/" + Self.singleFileName
        let indexPath = directory + "/" + Self.indexFileName
        if fm.fileExists(atPath: single) {
            let file = try SafetensorsFile(path: single)
            self.indexPath = nil
            weightMap = Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, Self.singleFileName) })
            fileNames = [Self.singleFileName]
            totalSize = nil
            opened[Self.singleFileName] = file
        } else if fm.fileExists(atPath: indexPath) {
            let index = try SafetensorsCheckpointIndex.load(path: indexPath)
            self.indexPath = indexPath
            weightMap = index.weightMap
            fileNames = Set(index.weightMap.values).sorted()
            totalSize = index.totalSize
            for name in fileNames where !fm.fileExists(atPath: directory + "/" + name) {
                let tensor = index.weightMap.filter { $0.value == name }.keys.min()!
                throw SafetensorsError(indexPath, "weight_map refers to '\(name)' (e.g. for tensor '\(tensor)'), which does not exist in \(directory)")
            }
        } else {
            throw SafetensorsError(directory, "no \(Self.singleFileName) or \(Self.indexFileName) in this folder")
        }
    }

    /// All tensor names, sorted.
    public var tensorNames: [String] { weightMap.keys.sorted() }

    /// True when the checkpoint holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { weightMap[name] != nil }

    /// The description of the tensor called `name` (opens its shard if needed).
    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        let file = try shard(holding: name)
        return file.info(name)!
    }

    /// The tensor called `name` as Float32 (opens its shard if needed).
    public func tensor(_ name: String) throws -> Tensor {
        try shard(holding: name).tensor(name)
    }

    /// The opened shard that holds `name`.
    public func shard(holding name: String) throws -> SafetensorsFile {
        guard let fileName = weightMap[name] else {
            throw SafetensorsError(indexPath ?? directory + "/" + Self.singleFileName, tensor: name, "no such tensor in this checkpoint")
        }
        return try shard(named: fileName)
    }

    /// Opens every shard, running every consistency check; throws the first problem found.
    public func validate() throws {
        for name in fileNames { _ = try shard(named: name) }
    }

    /// The shard `fileName`, opened and checked against the index on first use.
    public func shard(named fileName: String) throws -> SafetensorsFile {
        lock.lock()
        defer { lock.unlock() }
        if let file = opened[fileName] { return file }
        guard fileNames.contains(fileName) else {
            throw SafetensorsError(directory, "'\(fileName)' is not a file of this checkpoint")
        }
        let file = try SafetensorsFile(path: directory + "/" + fileName)
        for (tensor, owner) in weightMap where owner == fileName && !file.contains(tensor) {
            throw SafetensorsError(file.path, tensor: tensor, "the index assigns it to this shard, but the shard does not contain it")
        }
        for tensor in file.tensorNames {
            guard let owner = weightMap[tensor] else {
                throw SafetensorsError(file.path, tensor: tensor, "stored in this shard but not listed in the index's weight_map")
            }
            if owner != fileName {
                throw SafetensorsError(file.path, tensor: tensor, "duplicate: stored in this shard and in '\(owner)' (where the index assigns it)")
            }
        }
        opened[fileName] = file
        return file
    }
}
