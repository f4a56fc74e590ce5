import Foundation
import Lancet
import XCTest

/// SplitMix64, so generated cases are the same on every run.
struct CaseGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(xs.count)] }

    static let words = ["unstructured", "2:4", "blocks.*.mlp.*", "a-b_c", "x/y", "4:8", "-3", "0.5", "1e-4", "-2.5e+3", "true", "false", "null", "42", "~/m"]
    static let strings = ["a b", "with, comma", "q\"uote", "back\\slash", "line\nbreak", "tab\there", "(paren)", "pipe|", "", "0.5", "true", "null",
                          "ünïcode", "ctl\u{1}", "{x}", "k=v", "#hash", "*star", "-", "- dash", ": colon", "yes", "True", "~", "a:b"]
    static let keys = ["sparsity", "pattern", "k", "n", "two words", "x:y", "per_row", "α"]

    /// A scalar as a parser would build it (quotes kept only where they change the type).
    mutating func scalar() -> OptionValue {
        int(2) == 0 ? .written(pick(Self.words), quoted: false, location: nil) : .written(pick(Self.strings), quoted: true, location: nil)
    }

    mutating func value(depth: Int = 0) -> OptionValue {
        switch depth < 2 ? int(6) : 0 {
        case 4: return .list((0..<int(4)).map { _ in value(depth: depth + 1) }, location: nil)
        case 5: return .object(entries(depth: depth + 1))
        default: return scalar()
        }
    }

    mutating func entries(depth: Int) -> [(key: String, value: OptionValue, location: SourceLocation?)] {
        var keys = Self.keys
        return (0..<int(4)).map { _ in (keys.remove(at: int(keys.count)), value(depth: depth), nil) }
    }

    mutating func fit() -> FitSpec {
        switch int(5) {
        case 0: return FitSpec()
        case 1: return FitSpec(method: .lstsq)
        case 2: return FitSpec(method: .lstsq, damping: pick([0, 0.1, 1e-5]))
        case 3: return FitSpec(method: .regional, steps: 1 + int(50), learningRate: pick([1e-4, 0.003, 2]), batch: 1 + int(8))
        default: return FitSpec(method: .none, damping: 0.5)
        }
    }

    mutating func invocation() -> PassInvocation {
        let patterns = ["blocks.*.mlp.*", "blocks.0.*", "*.attn.q", "blocks.?.mlp.up", "blocks.1.attn.o.weight"]
        return PassInvocation(name: pick(["magnitude", "wanda", "prune-structured", "wanda++", "sparsegpt"]), options: .object(entries(depth: 1)),
                              selection: TargetSelection(targets: (0..<int(3)).map { _ in pick(patterns) }, ignore: (0..<int(2)).map { _ in pick(patterns) }),
                              fit: fit())
    }
}

final class PipelineTextTests: XCTestCase {
    func testParsesPassesOptionsTargetsAndFit() throws {
        let passes = try PipelineText.parse(#"magnitude(sparsity=0.5, pattern=2:4, targets=[blocks.*.mlp.*], ignore=["blocks.0.*"], fit=lstsq) | wanda(sparsity=0.5)|x"#)
        XCTAssertEqual(passes.map(\.name), ["magnitude", "wanda", "x"])
        XCTAssertEqual(passes[0].options, .object([("sparsity", .scalar("0.5", quoted: false, location: nil), nil), ("pattern", .scalar("2:4", quoted: false, location: nil), nil)]))
        XCTAssertEqual(passes[0].selection, TargetSelection(targets: ["blocks.*.mlp.*"], ignore: ["blocks.0.*"]))
        XCTAssertEqual(passes[0].fit, FitSpec(method: .lstsq))
        XCTAssertEqual(passes[0].location, SourceLocation(file: "<pipeline>", line: 1, column: 1))
        XCTAssertEqual(passes[1].location.column, 100)
        XCTAssertEqual(passes[2].options, .object([]))
        let fit = try PipelineText.parse("a(fit={method: regional, steps: 20, learning_rate: 0.001})")[0].fit
        XCTAssertEqual(fit, FitSpec(method: .regional, steps: 20, learningRate: 0.001))
    }

    func testValuesKeepTheirTypesAndEscapes() throws {
        let p = try PipelineText.parse(#"p(a="0.5", b=0.5, c=true, d="x \"y\"\n\u{e9}", e=[1, [2, "3"]], f={k: v, n: 2:4}, g=null, h="")"#)[0]
        guard case let .object(e) = p.options else { return XCTFail() }
        XCTAssertEqual(e[0].value.json as? String, "0.5")
        XCTAssertEqual(e[1].value.json as? Double, 0.5)
        XCTAssertEqual(e[2].value.json as? Bool, true)
        XCTAssertEqual(e[3].value.json as? String, "x \"y\"\né")
        XCTAssertEqual(e[4].value.canonicalText, #"[1, [2, "3"]]"#)
        XCTAssertEqual(e[5].value.canonicalText, "{k: v, n: 2:4}")
        XCTAssertTrue(e[6].value.json is NSNull)
        XCTAssertEqual(e[7].value.json as? String, "")
    }

    func testRendersTheCanonicalForm() throws {
        let text = #"  magnitude( sparsity = 0.5 ,pattern="2:4", fit = { method: lstsq } , targets = "blocks.*" )|wanda() | "sparse gpt"(x="abc")"#
        XCTAssertEqual(PipelineText.render(try PipelineText.parse(text)),
                       #"magnitude(sparsity=0.5, pattern=2:4, targets=[blocks.*], fit=lstsq) | wanda | "sparse gpt"(x=abc)"#)
    }

    func testRoundTripsGeneratedPipelines() throws {
        var g = CaseGenerator(state: 1)
        for _ in 0..<500 {
            let passes = (0..<(1 + g.int(3))).map { _ in g.invocation() }
            let text = PipelineText.render(passes)
            let parsed = try PipelineText.parse(text)
            XCTAssertEqual(parsed, passes, text)
            XCTAssertEqual(PipelineText.render(parsed), text)
        }
    }

    func testSyntaxErrorsPointAtTheColumn() {
        let cases: [(String, Int, String)] = [
            ("magnitude(sparsity=0.5", 10, "'(' of pass 'magnitude' is never closed"),
            ("magnitude(sparsity 0.5)", 20, "expected '=' after option 'sparsity'"),
            ("magnitude(sparsity=0.5) |", 26, "expected a pass name after '|'"),
            ("| wanda", 1, "expected a pass name, got '|' with no pass before it"),
            ("magnitude(=0.5)", 11, "expected an option name"),
            ("a(x=1))", 7, "unmatched ')'"),
            ("a(x=\"abc)", 5, "unterminated string"),
            ("a(x=[1, 2)", 10, "expected ',' or ']' in the list"),
            ("a(x={k 1})", 8, "expected ':' after key 'k'"),
            ("a(x=1, x=2)", 8, "option 'x' is given twice"),
            ("a b", 3, "expected '|' between passes"),
            ("   ", 4, "empty pipeline"),
            ("a(x=1 y=2)", 7, "expected ',' or ')' after the value of 'x'"),
            (#"a(x="\q")"#, 6, "unknown escape '\\q'"),
            ("a(fit=lsq)", 7, "unknown fit method 'lsq' (did you mean 'lstsq'?); valid methods: none, lstsq, regional"),
            ("a(fit={method: regional, steps: 0})", 33, "fit.steps: must be positive"),
            ("a(targets=[x, [y]])", 15, "expected a target pattern"),
            ("a(x=)", 5, "expected a value, got ')'"),
        ]
        for (text, column, fragment) in cases {
            assertError(recipeError { try PipelineText.parse(text) }, at: 1, column, in: "<pipeline>", contains: [fragment])
        }
    }

    func testErrorsPrintACaretUnderTheColumn() {
        let text = "magnitude(sparsity 0.5)"
        let e = recipeError { try PipelineText.parse(text) }
        XCTAssertEqual(e?.description, "<pipeline>:1:20: expected '=' after option 'sparsity' (options are written key=value)")
        XCTAssertEqual(e?.caret(in: text), "magnitude(sparsity 0.5)\n                   ^")
    }

    func testPipelinePassesAreCheckedByTheRegistryWithTheirColumns() throws {
        let registry = try testRegistry()
        let passes = try PipelineText.parse("fake-prune(sparsity=0.2) | fake-prune(sparsty=0.5)")
        XCTAssertNoThrow(try registry.instantiate(passes[0]))
        assertError(recipeError { try registry.instantiate(passes[1]) }, at: 1, 39, in: "<pipeline>",
                    contains: ["passes[1].fake-prune.sparsty: unknown option 'sparsty' (did you mean 'sparsity'?)"])
    }
}
