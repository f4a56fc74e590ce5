import Foundation

/// One fenced code block of a Markdown file: its language and marks (the words of the info string, ```` ```sh long ````),
/// the excerpt path of a `<!-- excerpt: PATH -->` line just before it, and its code. See Docs/WritingAPass.md,
/// "Docs that run", for what the marks mean.
struct MarkdownSnippet: CustomStringConvertible {
    /// The Markdown file, relative to the package root (`Docs/CLI.md`).
    var file: String
    /// The 1-based line of the opening fence.
    var line: Int
    /// The info string's first word (`sh`, `swift`, `yaml`, `text`, …), empty when there is none.
    var language: String
    /// The info string's other words (`illustration`, `long`).
    var marks: [String]
    /// The path of a `<!-- excerpt: PATH -->` comment on the line before the fence.
    var excerpt: String?
    /// The lines between the fences, with the fence's indentation removed.
    var code: String

    /// The code after as many empty lines as precede it in the file, so that a compiler's or parser's line numbers
    /// are the Markdown file's.
    var codeAtFileLines: String { String(repeating: "\n", count: line) + code }

    /// A snippet shown as syntax only: parsed, never run or compiled.
    var isIllustration: Bool { marks.contains("illustration") }
    /// A shell snippet that takes minutes: parsed and its commands checked against the tools, not run.
    var isLong: Bool { marks.contains("long") }

    var description: String { "\(file):\(line) (```\(([language] + marks).joined(separator: " ")))" }

    /// Every fenced block of `markdown`, in order; an unclosed fence runs to the end of the text.
    static func snippets(in markdown: String, file: String) -> [MarkdownSnippet] {
        let lines = markdown.components(separatedBy: "\n")
        var result: [MarkdownSnippet] = []
        var i = 0
        while i < lines.count {
            let trimmed = lines[i].drop(while: { $0 == " " })
            guard trimmed.hasPrefix("```") else { i += 1; continue }
            let indent = lines[i].count - trimmed.count
            let words = trimmed.dropFirst(3).split(separator: " ").map(String.init)
            var excerpt: String?
            if i > 0 {
                let previous = lines[i - 1].trimmingCharacters(in: .whitespaces)
                if previous.hasPrefix("<!-- excerpt:"), previous.hasSuffix("-->") {
                    excerpt = previous.dropFirst("<!-- excerpt:".count).dropLast("-->".count).trimmingCharacters(in: .whitespaces)
                }
            }
            var code: [String] = []
            var j = i + 1
            while j < lines.count, !lines[j].drop(while: { $0 == " " }).hasPrefix("```") {
                code.append(String(lines[j].dropFirst(min(indent, lines[j].prefix { $0 == " " }.count))))
                j += 1
            }
            result.append(MarkdownSnippet(file: file, line: i + 1, language: words.first ?? "", marks: Array(words.dropFirst()),
                                          excerpt: excerpt, code: code.joined(separator: "\n")))
            i = j + 1
        }
        return result
    }

    /// Every snippet of `README.md` and `Docs/*.md` under `root`.
    static func documentation(root: URL) throws -> [MarkdownSnippet] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "Docs/" + $0 }
        return try (["README.md"] + docs).flatMap { file in
            snippets(in: try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8), file: file)
        }
    }
}
