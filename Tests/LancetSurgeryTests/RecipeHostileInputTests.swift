import Foundation
import Lancet
import XCTest

/// Recipes written to break the reader: YAML aliases (up to a billion laughs), merge keys, numbers that
/// are not finite, and control characters in names. Each is refused with a located error that names it.
final class RecipeHostileInputTests: XCTestCase {
    func parse(_ yaml: String) throws -> Recipe { try RecipeParser.parse(yaml, file: "recipe.yaml", baseDirectory: "/r") }
    func error(_ yaml: String) -> RecipeError? { recipeError { try parse(yaml) } }
    let aliasRefusal = "YAML anchors/aliases/merge keys are not allowed in recipes"

    /// Nine levels of nine-fold aliases: 9⁹ strings if expanded.
    static func billionLaughs(levels: Int = 9) -> String {
        var lines = ["lancet: 1", "lol0: &lol0 \"lol\""]
        for i in 1...levels {
            lines.append("lol\(i): &lol\(i) [" + Array(repeating: "*lol\(i - 1)", count: 9).joined(separator: ", ") + "]")
        }
        lines += ["stages:", "  - name: *lol\(levels)", "    passes: [magnitude]"]
        return lines.joined(separator: "\n") + "\n"
    }

    func testABillionLaughsRecipeIsRefusedAtItsFirstAnchor() {
        for levels in [1, 3, 9] {
            assertError(error(Self.billionLaughs(levels: levels)), at: 2, 7, contains: [aliasRefusal, "the anchor '&lol0'"])
        }
    }

    func testASimpleAliasIsRefusedWhereItsAnchorIsWritten() {
        let yaml = "lancet: 1\nmodel: &m foo.gguf\nstages:\n  - name: *m\n    passes: [magnitude]\n"
        assertError(error(yaml), at: 2, 8, contains: ["recipe.yaml:2:8: \(aliasRefusal)", "the anchor '&m'"])
    }

    func testAnchorsOnListsAndMappingsAreRefused() {
        assertError(error("lancet: 1\nstages: &s [{name: a, passes: [magnitude]}]\n"), at: 2, 9, contains: [aliasRefusal, "'&s'"])
        assertError(error("lancet: 1\nstages:\n  - &one {name: a, passes: [magnitude]}\n"), at: 3, 5, contains: [aliasRefusal, "'&one'"])
    }

    func testAnAliasWithoutAnAnchorIsRefusedWithTheQuotingHint() {
        let e = error("stages:\n  - passes:\n      - magnitude:\n        targets: [*star]\n")
        assertError(e, at: 4, 19, contains: [aliasRefusal, "the alias '*star'", "must be quoted"])
        XCTAssertEqual(try parse("stages:\n  - passes:\n      - magnitude:\n        targets: [\"*star\"]\n").stages[0].passes[0].selection.targets, ["*star"])
    }

    func testAMergeKeyIsRefusedWithOrWithoutAnAlias() {
        assertError(error("lancet: 1\nstages:\n  - <<: {name: s}\n    passes: [magnitude]\n"), at: 3, 5, contains: [aliasRefusal, "the merge key '<<'"])
        assertError(error("lancet: 1\nstages:\n  - !!merge m: {name: s}\n    passes: [magnitude]\n"), at: 3, 5, contains: [aliasRefusal, "merge key"])
        let aliased = "base: &b {sparsity: 0.5}\nstages:\n  - passes:\n      - magnitude: {<<: *b}\n"
        assertError(error(aliased), at: 1, 7, contains: [aliasRefusal, "'&b'"])
        // A quoted "<<" is an ordinary (unknown) key, and "<<" as a value is an ordinary string.
        assertError(error("stages:\n  - \"<<\": {name: s}\n    passes: [magnitude]\n"), at: 2, 5, contains: ["unknown key '<<'"])
        XCTAssertEqual(try parse("stages:\n  - name: <<\n    passes: [magnitude]\n").stages[0].name, "<<")
    }

    func testSyntaxErrorsBeforeAnyAliasKeepTheirMessage() {
        assertError(error("stages: [\n"), at: 2, 1, contains: ["invalid YAML"])
    }

    func testNonFiniteOptionNumbersAreRefusedNamingTheOptionAndTheValue() throws {
        let registry = try testRegistry()
        for text in ["1e400", "-1e400", ".inf", "-.inf", "+.Inf", ".nan", ".NaN", "nan", "inf", "-infinity"] {
            let yaml = "stages:\n  - passes:\n      - fake-prune: {sparsity: \(text)}\n"
            let problems = RecipeValidator.validate(try parse(yaml), registry: registry, model: nil, checkFiles: false)
            XCTAssertEqual(problems.count, 1, text)
            assertError(problems.first, at: 3, 32, contains: ["stages[0].passes[0].fake-prune.sparsity: \(text) is not a finite number"])
        }
        let pipeline = try PipelineText.parse("fake-prune(sparsity=1e400)")
        let inPipeline = RecipeValidator.validate(Recipe(stages: [Stage(name: "s", passes: pipeline)]), registry: registry, model: nil, checkFiles: false)
        XCTAssertEqual(inPipeline.map(\.description), ["<pipeline>:1:21 passes[0].fake-prune.sparsity: 1e400 is not a finite number"])
    }

    func testNonFiniteNumbersInsideListsAndMappingsAndFitSettingsAreNamedByPath() throws {
        let registry = try BuiltinPasses.registry(extra: [[FakeSchedule.self]])
        func problem(_ options: String) throws -> RecipeError? {
            let invocation = try parse("stages:\n  - passes:\n      - fake-schedule: \(options)\n").stages[0].passes[0]
            return recipeError { try registry.instantiate(invocation) }
        }
        let inList = try problem("{levels: [0.1, 0.2, -.inf]}")
        XCTAssertEqual(inList?.description, "recipe.yaml:3:44 stages[0].passes[0].fake-schedule.levels[2]: -.inf is not a finite number")
        let inMapping = try problem("{table: {a: 1, b: 1e999}}")
        XCTAssertEqual(inMapping?.description, "recipe.yaml:3:42 stages[0].passes[0].fake-schedule.table.b: 1e999 is not a finite number")
        XCTAssertNoThrow(try registry.instantiate(try parse("stages:\n  - passes:\n      - fake-schedule: {levels: [1e300], table: {a: -2}}\n").stages[0].passes[0]))
        assertError(error("stages:\n  - passes:\n      - fake-prune:\n        fit: {method: lstsq, damping: 1e400}\n"), at: 4, 39,
                    contains: ["stages[0].passes[0].fit.damping: 1e400 is not a finite number"])
    }

    func testAQuotedNonFiniteSpellingIsAnOrdinaryString() throws {
        let yaml = "stages:\n  - passes:\n      - fake-prune: {pattern: \".nan\"}\n"
        XCTAssertEqual(RecipeValidator.validate(try parse(yaml), registry: try testRegistry(), model: nil, checkFiles: false), [])
    }

    func testControlCharactersInStageAndPassNamesAreRefused() {
        assertError(error("stages:\n  - name: \"a\\0b\"\n    passes: [magnitude]\n"), at: 2, 11,
                    contains: ["stages[0].name: \"a\\u{0}b\" contains the control character U+0000 at character 2"])
        assertError(error("stages:\n  - name: \"evil\\u202Etxt\"\n    passes: [magnitude]\n"), at: 2, 11,
                    contains: ["stages[0].name:", "bidirectional formatting character U+202E at character 5"])
        assertError(error("stages:\n  - passes: [\"mag\\x1bnitude\"]\n"), at: 2, 14, contains: ["stages[0].passes[0]: the pass name", "U+001B"])
        assertError(error("stages:\n  - passes:\n      - \"mag\\tnitude\": {sparsity: 0.5}\n"), at: 3, 9, contains: ["the key \"mag\\tnitude\"", "U+0009"])
        assertError(recipeError { try PipelineText.parse("\"mag\\u{0}nitude\"(sparsity=0.5)") }, at: 1, 1, in: "<pipeline>", contains: ["the pass name", "U+0000"])
        assertError(recipeError { try PipelineText.parse("magnitude(\"a\\u{7}\"=1)") }, at: 1, 11, in: "<pipeline>", contains: ["the option name", "U+0007"])
    }

    func testControlCharactersInPathsAndPatternsAreRefused() {
        assertError(error("model: \"m\\0.gguf\"\nstages: [{passes: [magnitude]}]\n"), at: 1, 8, contains: ["model: \"m\\u{0}.gguf\" contains the control character U+0000"])
        assertError(error("calibration: {data: \"c\\rx.txt\"}\nstages: [{passes: [magnitude]}]\n"), at: 1, 21, contains: ["calibration.data:", "U+000D"])
        assertError(error("stages:\n  - passes:\n      - magnitude:\n        targets: [ok, \"blocks.\\0.*\"]\n"), at: 4, 23,
                    contains: ["stages[0].passes[0].targets[1]:", "U+0000"])
    }

    func testOptionValuesMayHoldAnyText() throws {
        let r = try parse("stages:\n  - passes:\n      - fake-prune: {pattern: \"tab\\there\\u0001\"}\n")
        XCTAssertEqual(r.stages[0].passes[0].options.keys, ["pattern"])
        XCTAssertEqual(try RecipeParser.parse(RecipePrinter.yaml(r), file: "again.yaml"), r)
    }
}

/// A test-only pass whose options hold a list and a mapping of numbers.
struct FakeSchedule: BlockPass {
    struct Options: Codable, Sendable {
        var levels: [Double] = [0.5]
        var table: [String: Double] = [:]
    }
    static let name = "fake-schedule"
    static let summary = "Test pass: options with nested numbers."
    static let defaultOptions = Options()
    init(options: Options) throws {}
    func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
}
