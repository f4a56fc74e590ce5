import Foundation

extension SafetensorsWriter {
    /// Writes the tensors as a Hugging Face checkpoint folder, each file atomically.
    ///
    /// When the data fits in `maxShardBytes` the folder gets one `model.safetensors`, as transformers'
    /// `save_pretrained` does; otherwise shards `model-00001-of-0000K.safetensors` of at most
    /// `maxShardBytes` bytes of tensor data each (a tensor larger than the limit gets a shard of its own),
    /// in layout order, then `model.safetensors.index.json` last, so the index only ever names complete shards.
    /// The folder is created if needed. With `overwrite: true`, files of an earlier checkpoint that would
    /// shadow or confuse the new one (a `model.safetensors` beside a new index, an index beside a new single
    /// file, shards of another count) are removed; with `overwrite: false`, any of them existing is an error.
    /// Returns the file names written, index last.
    @discardableResult
    public func writeCheckpoint(to directory: String, maxShardBytes: Int, overwrite: Bool = true) throws -> [String] {
        precondition(maxShardBytes > 0, "SafetensorsWriter: maxShardBytes must be positive")
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw SafetensorsError(directory, "cannot create the checkpoint folder: \(error.localizedDescription)")
        }
        let shards = Self.split(layout, maxShardBytes: maxShardBytes)
        let names = shards.count <= 1
            ? [SafetensorsCheckpoint.singleFileName]
            : (1...shards.count).map { Self.shardFileName($0, of: shards.count) } + [SafetensorsCheckpoint.indexFileName]
        let stale = try Self.existingCheckpointFiles(in: directory).subtracting(names)
        if !overwrite {
            for name in names + stale.sorted() where fm.fileExists(atPath: directory + "/" + name) {
                throw FileWriteError(path: directory + "/" + name, reason: "already exists (use --force to overwrite)")
            }
        }
        if shards.count <= 1 {
            try Self.write(shards.first ?? [], metadata: metadata, to: directory + "/" + names[0], overwrite: overwrite)
        } else {
            var weightMap: [String: String] = [:]
            for (i, shard) in shards.enumerated() {
                try Self.write(shard, metadata: metadata, to: directory + "/" + names[i], overwrite: overwrite)
                for entry in shard { weightMap[entry.name] = names[i] }
            }
            let index = SafetensorsCheckpointIndex(totalSize: dataByteCount, weightMap: weightMap)
            let json = try index.encodedJSON()
            try AtomicFile.write(to: directory + "/" + SafetensorsCheckpoint.indexFileName, overwrite: overwrite) { try $0.write(json) }
        }
        for name in stale { try? fm.removeItem(atPath: directory + "/" + name) }
        return names
    }

    /// The Hugging Face name of shard `i` (1-based) of `count`: `model-00001-of-00003.safetensors`.
    public static func shardFileName(_ i: Int, of count: Int) -> String {
        func five(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "model-\(five(i))-of-\(five(count)).safetensors"
    }

    /// Splits entries, in order, into runs of at most `maxShardBytes` data bytes (an oversized entry alone).
    static func split(_ entries: [Entry], maxShardBytes: Int) -> [ArraySlice<Entry>] {
        var shards: [ArraySlice<Entry>] = []
        var start = 0, bytes = 0
        for (i, entry) in entries.enumerated() {
            if i > start && bytes + entry.byteCount > maxShardBytes {
                shards.append(entries[start..<i])
                start = i
                bytes = 0
            }
            bytes += entry.byteCount
        }
        if start < entries.count { shards.append(entries[start...]) }
        return shards
    }

    /// Names in `directory` that belong to a safetensors checkpoint: the single file, the index, and shards.
    static func existingCheckpointFiles(in directory: String) throws -> Set<String> {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return Set(all.filter(isCheckpointFileName))
    }

    /// Whether `name` is a file of a safetensors checkpoint: the single file, the index, or a shard.
    static func isCheckpointFileName(_ name: String) -> Bool {
        name == SafetensorsCheckpoint.singleFileName || name == SafetensorsCheckpoint.indexFileName || isShardFileName(name)
    }

    /// True for names of the form `model-NNNNN-of-NNNNN.safetensors`.
    static func isShardFileName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard b.count == "model-00001-of-00001.safetensors".utf8.count, name.hasPrefix("model-"), name.hasSuffix(".safetensors") else { return false }
        let digits = Array(b[6..<11]) + Array(b[15..<20])
        return digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } && String(decoding: b[11..<15], as: UTF8.self) == "-of-"
    }
}
