import Foundation

/// Compiles a Swift snippet of the documentation against the built Lancet modules (`swiftc -typecheck` with
/// `.build/<configuration>/Modules` and the system-library module maps on the search path), or, for an
/// illustration, only parses it as the body of a type (declarations, `…` bodies written as comments).
enum SwiftSnippetCheck {
    /// The compiler's exit status and what it printed; its line numbers are the Markdown file's.
    static func check(_ snippet: MarkdownSnippet, in folder: String) throws -> CommandLineTool.Result {
        let root = CommandLineTool.packageRoot
        let file = folder + "/" + snippet.file.replacingOccurrences(of: "/", with: "_") + ".swift"
        if snippet.isIllustration {
            try ("enum Illustration {" + snippet.codeAtFileLines + "\n}\n").write(toFile: file, atomically: true, encoding: .utf8)
            return try CommandLineTool.run(executable: "/usr/bin/env", ["swiftc", "-parse", file], in: folder)
        }
        try snippet.codeAtFileLines.write(toFile: file, atomically: true, encoding: .utf8)
        let modules = URL(fileURLWithPath: CommandLineTool.path).deletingLastPathComponent().appendingPathComponent("Modules").path
        let arguments = ["swiftc", "-typecheck", "-module-name", "Snippet", "-swift-version", "5", "-I", modules] + moduleMapFolders(root: root).flatMap { ["-I", $0] }
        return try CommandLineTool.run(executable: "/usr/bin/env", arguments + [file], in: folder)
    }

    /// The folders of the C modules the Swift modules import: the package's system libraries (`Sources/CBLAS`, …)
    /// and the dependencies' (`.build/checkouts/Yams/Sources/CYaml/include`).
    static func moduleMapFolders(root: URL) -> [String] {
        let fm = FileManager.default
        func targets(_ sources: URL) -> [URL] {
            ((try? fm.contentsOfDirectory(atPath: sources.path)) ?? []).map { sources.appendingPathComponent($0) }
        }
        let checkouts = root.appendingPathComponent(".build/checkouts")
        let dependencies = ((try? fm.contentsOfDirectory(atPath: checkouts.path)) ?? []).flatMap { targets(checkouts.appendingPathComponent($0).appendingPathComponent("Sources")) }
        return (targets(root.appendingPathComponent("Sources")) + dependencies).flatMap { [$0, $0.appendingPathComponent("include")] }
            .filter { fm.fileExists(atPath: $0.appendingPathComponent("module.modulemap").path) }.map(\.path)
    }
}
