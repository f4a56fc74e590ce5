import Foundation
import Lancet
import XCTest

/// Every shell and Swift snippet of `README.md` and `Docs/*.md` runs or compiles (Docs/WritingAPass.md, "Docs that
/// run"): plain ```` ```sh ```` blocks run in a scratch copy of the repository root; ```` ```sh long ```` blocks (minutes
/// of work) are parsed by `bash -n` and each command is checked against its tool without running; ```` ```swift ````
/// blocks are type-checked against the built modules; `<!-- excerpt: PATH -->` blocks must stand verbatim in PATH
/// (compiled with it); `illustration` blocks are parsed only. `$ command` transcripts in ```` ```text ```` blocks are
/// run and must print what they show, and complete ```` ```yaml ```` recipes must pass `lancet validate`.
final class DocsSnippetTests: XCTestCase {
    static let root = CommandLineTool.packageRoot
    static let languages: Set<String> = ["sh", "swift", "yaml", "text", "pipeline", "python"]

    var workspace = ""

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: CommandLineTool.path) else { throw XCTSkip("\(CommandLineTool.path) is not built") }
        workspace = try DocsWorkspace.make()
    }

    override func tearDown() { DocsWorkspace.remove() }

    func snippets(_ language: String) throws -> [MarkdownSnippet] {
        try MarkdownSnippet.documentation(root: Self.root).filter { $0.language == language }
    }

    /// Runs `bash OPTIONS` on the snippet (its line numbers the Markdown file's) with the built tools on `PATH`.
    func shell(_ snippet: MarkdownSnippet, options: [String]) throws -> CommandLineTool.Result {
        let file = workspace + "/" + snippet.file.replacingOccurrences(of: "/", with: "_") + ".sh"
        try snippet.codeAtFileLines.write(toFile: file, atomically: true, encoding: .utf8)
        let bin = URL(fileURLWithPath: CommandLineTool.path).deletingLastPathComponent().path
        return try CommandLineTool.run(executable: "/usr/bin/env", ["PATH=\(bin):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")",
                                                                    "bash"] + options + [file], in: workspace)
    }

    /// Every fenced block has a known language and marks, and is checked by one of the tests below; prints the count
    /// of each kind per file.
    func testEverySnippetHasAKnownKindAndTheCountsArePrinted() throws {
        var counts: [String: [String: Int]] = [:]
        let all = try MarkdownSnippet.documentation(root: Self.root)
        for snippet in all {
            XCTAssertTrue(Self.languages.contains(snippet.language), "\(snippet): unknown language; use one of \(Self.languages.sorted())")
            let allowed: Set<String> = snippet.language == "sh" ? ["illustration", "long"] : ["illustration"]
            XCTAssertTrue(Set(snippet.marks).isSubset(of: allowed), "\(snippet): unknown mark; allowed: \(allowed.sorted())")
            // Python needs the reference lab's venv (torch, transformers), so a script under scripts/ runs it instead.
            if snippet.language == "python" { XCTAssertTrue(snippet.isIllustration, "\(snippet): a python block must be marked illustration") }
            let kind: String
            switch snippet.language {
            case "swift": kind = snippet.excerpt != nil ? "swift excerpt" : snippet.isIllustration ? "swift parsed" : "swift compiled"
            case "sh": kind = snippet.isIllustration ? "sh parsed" : snippet.isLong ? "sh long (parsed, commands checked)" : "sh run"
            case "text" where snippet.code.hasPrefix("$ "): kind = "transcript run"
            default: kind = snippet.language + (snippet.isIllustration ? " illustration" : "")
            }
            counts[snippet.file, default: [:]][kind, default: 0] += 1
        }
        XCTAssertGreaterThan(all.filter { $0.language == "swift" }.count, 10)
        for (file, kinds) in counts.sorted(by: { $0.key < $1.key }) {
            print("docs snippets: \(file): " + kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
    }

    /// Excerpts quote code that is compiled where it stands (the example plugin, the library), so they compile.
    func testEveryExcerptStandsVerbatimInItsFile() throws {
        let excerpts = try MarkdownSnippet.documentation(root: Self.root).filter { $0.excerpt != nil }
        XCTAssertGreaterThanOrEqual(excerpts.count, 8, "the walkthrough's excerpts are missing")
        for snippet in excerpts {
            let path = snippet.excerpt!
            let source = try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
            XCTAssertFalse(snippet.code.isEmpty, "\(snippet)")
            XCTAssertTrue(source.contains(snippet.code), "\(snippet) quotes code that is no longer in \(path):\n\(snippet.code)")
        }
    }

    func testEverySwiftSnippetCompilesOrIfAnIllustrationParses() throws {
        for snippet in try snippets("swift") where snippet.excerpt == nil {
            let result = try SwiftSnippetCheck.check(snippet, in: workspace)
            XCTAssertEqual(result.status, 0, "\(snippet) does not \(snippet.isIllustration ? "parse" : "compile"):\n\(snippet.code)\n\(result.stdout)\(result.stderr)")
        }
    }

    func testEveryShellSnippetRunsOrIfLongParsesAndItsCommandsFitTheirTools() throws {
        let lancet = try CommandLineShape(executable: CommandLineTool.path)
        let fuzz = try CommandLineShape(executable: URL(fileURLWithPath: CommandLineTool.path).deletingLastPathComponent().appendingPathComponent("lancet-fuzz").path)
        for snippet in try snippets("sh") {
            if !snippet.isLong, !snippet.isIllustration {
                let result = try shell(snippet, options: ["-e", "-o", "pipefail"])
                XCTAssertEqual(result.status, 0, "\(snippet) fails when run:\n\(snippet.code)\n\(result.stdout)\(result.stderr)")
                continue
            }
            let syntax = try shell(snippet, options: ["-n"])
            XCTAssertEqual(syntax.status, 0, "\(snippet) is not valid shell:\n\(syntax.stderr)")
            guard snippet.isLong else { continue }
            var folder = workspace
            for words in ShellCommands.commands(in: snippet.code) {
                let place = "\(snippet), command `\(words.joined(separator: " "))`"
                switch (words[0] as NSString).lastPathComponent {
                case "cd":
                    folder = (folder as NSString).appendingPathComponent(words.count > 1 ? words[1] : "~")
                    XCTAssertTrue(FileManager.default.fileExists(atPath: folder), "\(place): no such folder")
                case "make":
                    let result = try CommandLineTool.run(executable: "/usr/bin/env", ["make", "-n"] + words.dropFirst(), in: folder)
                    XCTAssertEqual(result.status, 0, "\(place): `make -n` fails:\n\(result.stderr)")
                case "swift":
                    XCTAssertTrue(words.count > 1 && ["build", "test", "package", "run"].contains(words[1]), "\(place): unknown swift subcommand")
                    if let i = words.firstIndex(of: "--package-path"), i + 1 < words.count {
                        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/" + words[i + 1] + "/Package.swift"), "\(place): no package there")
                    }
                case "lancet":
                    try checkLancet(Array(words.dropFirst()), shape: lancet, in: folder, at: place)
                case "lancet-fuzz":
                    XCTAssertEqual(fuzz.parse(Array(words.dropFirst())).problems, [], place)
                default:
                    XCTFail("\(place): no check for `\(words[0])`; mark the block `illustration` or teach this test the command")
                }
            }
        }
    }

    /// A `lancet` command line that is not run: its arguments fit the subcommand, its input files exist, and a recipe
    /// it runs passes `lancet validate` (with the command's plugins).
    func checkLancet(_ words: [String], shape: CommandLineShape, in folder: String, at place: String) throws {
        let parse = shape.parse(words)
        XCTAssertEqual(parse.problems, [], place)
        for (name, value) in parse.values where ["model", "recipe", "calibration", "data", "eval", "file"].contains(name) {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Self.resolve(value, in: folder)), "\(place): <\(name)> \(value) does not exist")
        }
        guard parse.command == ["run"], let recipe = parse.values.first(where: { $0.name == "recipe" })?.value else { return }
        let plugins = parse.values.filter { $0.name == "plugin" }.map(\.value)
        if plugins.contains(where: { !FileManager.default.fileExists(atPath: Self.resolve($0, in: folder)) }) { return }  // built by the snippet
        let result = try CommandLineTool.run(["validate", recipe] + plugins.flatMap { ["--plugin", $0] }, in: folder)
        XCTAssertEqual(result.status, 0, "\(place): `lancet validate \(recipe)` fails:\n\(result.stdout)\(result.stderr)")
    }

    /// `path` as the shell in `folder` reads it (absolute, `~/…` or relative).
    static func resolve(_ path: String, in folder: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? expanded : (folder as NSString).appendingPathComponent(expanded)
    }

    /// `$ lancet …` lines of ```` ```text ```` blocks run, and print exactly the lines shown below them.
    func testEveryTranscriptPrintsWhatItShows() throws {
        for snippet in try snippets("text") where snippet.code.hasPrefix("$ ") {
            var lines = snippet.code.components(separatedBy: "\n")[...]
            while let command = lines.first {
                lines = lines.dropFirst()
                let expected = lines.prefix { !$0.hasPrefix("$ ") }
                lines = lines.dropFirst(expected.count)
                let words = ShellCommands.commands(in: String(command.dropFirst(2)))[0]
                XCTAssertEqual(words[0], "lancet", "\(snippet): a transcript runs `lancet` only")
                let result = try CommandLineTool.run(Array(words.dropFirst()), in: workspace)
                let printed = (result.stdout + result.stderr).trimmingCharacters(in: .newlines)
                XCTAssertEqual(printed, expected.joined(separator: "\n").trimmingCharacters(in: .newlines),
                               "\(snippet): `\(command.dropFirst(2))` prints otherwise")
            }
        }
    }

    /// Complete recipes (with `lancet:` and `model:`) validate against the files they name; fragments parse (those
    /// of Docs/Recipes.md also round-trip, in RecipeRoundTripTests).
    func testEveryCompleteRecipeValidatesAndEveryFragmentParses() throws {
        var complete = 0
        for snippet in try snippets("yaml") where !snippet.isIllustration {
            let keys = snippet.code.components(separatedBy: "\n").map { $0.prefix { $0 != ":" } }
            guard keys.contains("lancet"), keys.contains("model") else {
                XCTAssertNoThrow(try RecipeParser.parse(snippet.codeAtFileLines, file: snippet.file, baseDirectory: workspace), "\(snippet)")
                continue
            }
            complete += 1
            let file = snippet.file.replacingOccurrences(of: "/", with: "_") + ".yaml"
            try snippet.codeAtFileLines.write(toFile: workspace + "/" + file, atomically: true, encoding: .utf8)
            let result = try CommandLineTool.run(["validate", file], in: workspace)
            XCTAssertEqual(result.status, 0, "\(snippet) does not validate:\n\(result.stdout)\(result.stderr)")
        }
        XCTAssertGreaterThanOrEqual(complete, 1)
    }

    /// Pipelines shown as syntax (```` ```pipeline illustration ````) parse, and their canonical form parses to the
    /// same passes; runnable ```` ```pipeline ```` lines are also validated, by RecipeRoundTripTests.
    func testEveryPipelineIllustrationParses() throws {
        for snippet in try snippets("pipeline") where snippet.isIllustration {
            for line in snippet.code.split(separator: "\n") {
                let passes = try PipelineText.parse(String(line))
                XCTAssertEqual(try PipelineText.parse(PipelineText.render(passes)), passes, "\(snippet): \(line)")
            }
        }
    }
}
