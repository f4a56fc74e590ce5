import Foundation
import XCTest

/// `Docs/WritingAPass.md` walks through the example package with excerpts of its code; each excerpt is marked
/// `<!-- excerpt: PATH -->` and must still stand, verbatim, in the file it names, so the guide cannot drift.
final class DocsExcerptTests: XCTestCase {
    /// The (path, code) of every marked excerpt of a Markdown text.
    static func excerpts(in markdown: String) -> [(path: String, code: String)] {
        let lines = markdown.components(separatedBy: "\n")
        var result: [(String, String)] = []
        var i = 0
        while i < lines.count {
            let line = lines[i].trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("<!-- excerpt:"), line.hasSuffix("-->"), i + 1 < lines.count, lines[i + 1].hasPrefix("```") {
                let path = line.dropFirst("<!-- excerpt:".count).dropLast("-->".count).trimmingCharacters(in: .whitespaces)
                var code: [String] = []
                var j = i + 2
                while j < lines.count, !lines[j].hasPrefix("```") { code.append(lines[j]); j += 1 }
                result.append((path, code.joined(separator: "\n")))
                i = j
            }
            i += 1
        }
        return result
    }

    func testEveryExcerptOfTheWritingAPassGuideStandsInItsFile() throws {
        let root = ExamplePluginBuild.packageRoot
        let guide = try String(contentsOf: root.appendingPathComponent("Docs/WritingAPass.md"), encoding: .utf8)
        let excerpts = Self.excerpts(in: guide)
        XCTAssertGreaterThanOrEqual(excerpts.count, 8, "the walkthrough's excerpts are missing")
        XCTAssertTrue(excerpts.contains { $0.path.hasSuffix("BlockInfluenceRemoval.swift") })
        XCTAssertTrue(excerpts.contains { $0.path.hasSuffix("RandomPrune.swift") })
        for (path, code) in excerpts {
            let source = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
            XCTAssertFalse(code.isEmpty, path)
            XCTAssertTrue(source.contains(code), "Docs/WritingAPass.md quotes code that is no longer in \(path):\n\(code)")
        }
    }

    func testAnExcerptThatDriftedIsFound() {
        let markdown = "text\n<!-- excerpt: A.swift -->\n```swift\nlet x = 1\n```\n"
        XCTAssertEqual(Self.excerpts(in: markdown).map(\.code), ["let x = 1"])
        XCTAssertFalse("let x = 2\n".contains(Self.excerpts(in: markdown)[0].code))
    }
}
