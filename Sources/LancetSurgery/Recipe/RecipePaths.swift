import Foundation

/// Path handling for recipes: relative paths (model, calibration and evaluation data, output) resolve
/// against the recipe file's folder, lexically (no symbolic links are followed), keeping a trailing `/`.
public enum RecipePaths {
    /// `path` made absolute against `base`; `~/` expands to the home folder.
    public static func resolve(_ path: String, against base: String) -> String {
        var p = path
        if p == "~" || p.hasPrefix("~/") { p = NSHomeDirectory() + p.dropFirst() }
        if !p.hasPrefix("/") { p = base + "/" + p }
        return normalize(p)
    }

    /// The absolute folder of `file` (relative files resolve against the current directory).
    public static func directory(of file: String) -> String {
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        let parts = normalize(absolute).split(separator: "/", omittingEmptySubsequences: true)
        return "/" + parts.dropLast().joined(separator: "/")
    }

    /// `path` without `.` and empty components and with `..` applied (never above `/`).
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if !parts.isEmpty && parts.last != ".." { parts.removeLast() } else if !path.hasPrefix("/") { parts.append(c) }
                continue
            }
            parts.append(c)
        }
        let body = parts.joined(separator: "/")
        let trailing = path.hasSuffix("/") && !body.isEmpty ? "/" : ""
        return (path.hasPrefix("/") ? "/" : "") + body + trailing
    }

    /// Whether `path` names a folder output: it ends in `/`, or has no extension.
    public static func isFolder(_ path: String) -> Bool {
        path.hasSuffix("/") || (path as NSString).pathExtension.isEmpty
    }
}
