import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder of files written all or nothing, as `HuggingFaceExporter` writes a checkpoint: the files go into
/// a new hidden sibling folder, and only when every one was written are they moved into place (the sibling
/// renamed to the destination, or, into an existing destination, each file renamed over its old version).
/// A failure at any point removes the sibling and the parent folders this call made, so no empty, partial
/// or temporary output is left behind.
enum StagedFolder {
    /// Writes `folder` through `body`, which receives the staging folder to fill. `stale` names the files of an
    /// existing destination to remove once the new files are in place (files of an earlier, larger export).
    static func write(to folder: String, stale: (Set<String>) -> Set<String> = { _ in [] }, _ body: (String) throws -> Void) throws {
        var destination = folder
        while destination.count > 1, destination.hasSuffix("/") { destination.removeLast() }
        let parent = (destination as NSString).deletingLastPathComponent
        let made = try makeParents(parent.isEmpty ? "." : parent)
        let name = (destination as NSString).lastPathComponent
        let staging = (parent.isEmpty ? "." : parent) + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(staging, 0o755) == 0 else {
            let code = errno
            removeEmpty(made)
            throw FileWriteError(path: folder, failed: "cannot create the staging folder \(staging)", errno: code)
        }
        do {
            try body(staging)
            let written = Set(try FileManager.default.contentsOfDirectory(atPath: staging))
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: destination, isDirectory: &isFolder) {
                guard isFolder.boolValue else { throw FileWriteError(path: folder, reason: "exists and is not a folder") }
                let old = Set((try? FileManager.default.contentsOfDirectory(atPath: destination)) ?? [])
                for file in written.sorted() where rename(staging + "/" + file, destination + "/" + file) != 0 {
                    throw FileWriteError(path: destination + "/" + file, failed: "cannot move the new file into place", errno: errno)
                }
                for file in stale(old).subtracting(written) { unlink(destination + "/" + file) }
                rmdir(staging)
            } else if rename(staging, destination) != 0 {
                throw FileWriteError(path: folder, failed: "cannot rename the staging folder \(staging) into place", errno: errno)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            removeEmpty(made)
            throw error
        }
    }

    /// Makes the missing folders of `path` (as `mkdir -p`) and returns those it made, innermost first.
    static func makeParents(_ path: String) throws -> [String] {
        var missing: [String] = []
        var p = path
        while !p.isEmpty, p != "/", p != ".", !FileManager.default.fileExists(atPath: p) {
            missing.append(p)
            p = (p as NSString).deletingLastPathComponent
        }
        var made: [String] = []
        for m in missing.reversed() {
            if mkdir(m, 0o755) == 0 {
                made.insert(m, at: 0)
            } else if errno != EEXIST {
                let code = errno
                removeEmpty(made)
                throw FileWriteError(path: m, failed: "cannot create this folder", errno: code)
            }
        }
        return made
    }

    /// Removes each of `folders` (innermost first) that is empty.
    static func removeEmpty(_ folders: [String]) {
        for f in folders { rmdir(f) }
    }
}
