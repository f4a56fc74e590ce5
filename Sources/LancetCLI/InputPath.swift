import ArgumentParser
import Foundation

/// The check every command makes of the input paths given on its command line, in `validate()`, before any
/// work: a path that does not exist, or is a folder where a file is needed, is a usage error (exit 64, with
/// the command's usage). A path that exists but cannot be read or parsed fails later, while working (exit 1).
enum InputPath {
    /// What an input must be.
    enum Kind {
        /// A model: a GGUF file (a Lancet archive is one) or a Hugging Face folder.
        case model
        /// A file (text, data, a recipe).
        case file
    }

    /// Throws a `ValidationError` naming `what` (`MODEL`, `--data`) when `path` does not exist or is the wrong kind.
    static func require(_ path: String, _ what: String, kind: Kind = .file) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ValidationError("\(what) \(path): no such file or folder")
        }
        if kind == .file, isFolder.boolValue { throw ValidationError("\(what) \(path): is a folder, not a file") }
    }
}
