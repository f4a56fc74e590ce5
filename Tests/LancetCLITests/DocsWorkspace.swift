import Foundation

/// The folder documentation snippets run in: `.build-docs/work/` under the package root (git-ignored), which
/// stands for the repository root — `models`, `recipes`, `Examples`, `scripts`, `Makefile` and `.build` are
/// symbolic links to the real ones, and `.build-docs/shared` links to `../shared` — so a snippet's relative paths
/// mean what they mean from the root, while whatever it writes (`out/…`) stays in the scratch folder.
enum DocsWorkspace {
    static let root = CommandLineTool.packageRoot

    /// Makes the folder afresh and returns its path.
    static func make() throws -> String {
        let fm = FileManager.default
        let base = root.appendingPathComponent(".build-docs")
        remove()
        let work = base.appendingPathComponent("work")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        for name in ["models", "recipes", "Examples", "scripts", "Makefile", ".build"] {
            try fm.createSymbolicLink(at: work.appendingPathComponent(name), withDestinationURL: root.appendingPathComponent(name))
        }
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared")
        try fm.createSymbolicLink(at: base.appendingPathComponent("shared"), withDestinationURL: shared)
        return work.path
    }

    /// Removes the folder.
    static func remove() { try? FileManager.default.removeItem(at: root.appendingPathComponent(".build-docs")) }
}
