import Foundation
import LancetIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folders a run writes into — the output's folder and the checkpoint folder — checked, made and removed
/// with every failure in words naming the path. Folders Lancet owns (checkpoints) are made as new names and
/// removed without following symbolic links, so a link planted in their place never sends a write elsewhere.
public enum OutputFolder {
    /// What is at a path, looked at without following a final symbolic link.
    enum Entry: Equatable {
        case none, folder, link, other
    }

    /// Why `output` cannot be written, in words, or nil when it can: its folder exists and accepts a new
    /// file, or the nearest existing ancestor is a folder in which the missing folders can be made. The check
    /// makes and removes a probe (a file, or the first missing folder), so it leaves nothing behind.
    public static func problem(writing output: String) -> String? {
        let folder = parent(of: output)
        var outermostMissing: String?
        var ancestor = folder
        while !exists(ancestor) {
            outermostMissing = ancestor
            let up = parent(of: ancestor)
            if up == ancestor { break }
            ancestor = up
        }
        guard isFolder(ancestor) else { return "cannot create the folder \(outermostMissing ?? folder): \(ancestor) is not a folder" }
        if let missing = outermostMissing {
            guard mkdir(missing, 0o755) == 0 else { return "cannot create the folder \(missing): \(IOErrorText.words(errno: errno))" }
            rmdir(missing)
            return nil
        }
        let probe = folder + "/.lancet-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "cannot create files in the folder \(folder): \(IOErrorText.words(errno: errno))" }
        close(fd)
        unlink(probe)
        return nil
    }

    /// Creates `folder` and its missing ancestors (as `mkdir -p`, following the links of the caller's own
    /// path) and returns the folders it made, outermost first.
    @discardableResult
    public static func create(_ folder: String) throws -> [String] {
        var missing: [String] = []
        var f = folder
        while !exists(f) {
            missing.append(f)
            let up = parent(of: f)
            if up == f { break }
            f = up
        }
        var made: [String] = []
        for m in missing.reversed() {
            if mkdir(m, 0o755) == 0 {
                made.append(m)
            } else if !(errno == EEXIST && isFolder(m)) {
                throw FileWriteError(path: m, failed: "cannot create this folder", errno: errno)
            }
        }
        guard isFolder(folder) else { throw FileWriteError(path: folder, reason: "is not a folder") }
        return made
    }

    /// The folder `path` is in ("." for a bare name); trailing slashes of `path` are ignored.
    public static func parent(of path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        if trimmed == "/" { return "/" }
        let p = (trimmed as NSString).deletingLastPathComponent
        return p.isEmpty ? "." : p
    }

    /// `path` without trailing slashes (but "/" stays "/").
    static func trimmingTrailingSlashes(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    /// What is at `path`, without following a final link.
    static func entry(_ path: String) -> Entry {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .none }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .folder
        case S_IFLNK: return .link
        default: return .other
        }
    }

    /// Makes `path` as a new folder: anything already there (a folder, a file, a link) is an error, and a
    /// link is never followed (`mkdir` does not follow a final link).
    static func makeNew(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 else { throw FileWriteError(path: path, failed: "cannot create this folder", errno: errno) }
    }

    /// Removes `path` and everything in it. Links inside are removed, never followed; a link at `path` itself
    /// is removed, its target left alone. A missing `path` is no error.
    static func removeTree(_ path: String) throws {
        switch entry(path) {
        case .none: return
        case .link, .other:
            guard unlink(path) == 0 || errno == ENOENT else { throw FileWriteError(path: path, failed: "cannot remove this file", errno: errno) }
        case .folder:
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else {
                // Replaced by a link since it was looked at: remove the link only.
                if errno == ELOOP || errno == ENOTDIR { return try removeTree(path) }
                throw FileWriteError(path: path, failed: "cannot open this folder to remove it", errno: errno)
            }
            defer { close(fd) }
            try removeContents(of: fd, path: path)
            guard rmdir(path) == 0 || errno == ENOENT else { throw FileWriteError(path: path, failed: "cannot remove this folder", errno: errno) }
        }
    }

    /// Removes every entry of the open folder `fd` (at `path`, for messages), descending only into real
    /// folders, each opened relative to its parent without following links.
    static func removeContents(of fd: Int32, path: String) throws {
        for name in try names(in: fd, path: path) {
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw FileWriteError(path: path + "/" + name, failed: "cannot open this folder to remove it", errno: errno) }
                defer { close(child) }
                try removeContents(of: child, path: path + "/" + name)
                guard unlinkat(fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                    throw FileWriteError(path: path + "/" + name, failed: "cannot remove this folder", errno: errno)
                }
            } else {
                guard unlinkat(fd, name, 0) == 0 || errno == ENOENT else {
                    throw FileWriteError(path: path + "/" + name, failed: "cannot remove this file", errno: errno)
                }
            }
        }
    }

    /// The entry names of the open folder `fd`, without "." and "..".
    static func names(in fd: Int32, path: String) throws -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw FileWriteError(path: path, failed: "cannot list this folder", errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: e.pointee.d_name)) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 || lstat(path, &st) == 0
    }

    static func isFolder(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }
}
