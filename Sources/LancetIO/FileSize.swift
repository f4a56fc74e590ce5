import Foundation

/// Sizes of model files on disk, following symbolic links (a model given as a link, or a Hugging Face folder of
/// links into a cache, counts what the links point to).
public enum FileSize {
    /// Bytes of the regular file at `path` (through links), or nil when there is none.
    public static func bytes(ofFile path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil
    }

    /// Bytes of the file at `path`, or of the regular files directly in the folder at `path`; nil when nothing is there.
    public static func bytes(at path: String) -> Int? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        let files = isDirectory.boolValue ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 } : [path]
        return files.reduce(0) { $0 + (bytes(ofFile: $1) ?? 0) }
    }
}
