import Foundation
import Lancet
import XCTest

/// Every pass's doc comment shows a YAML sample (`/// ```yaml … ```); this test reads them from the sources of every
/// pass target and of the example plugin, and checks that each parses and validates against a tiny model with the
/// registry that `lancet` uses, and that every registered pass has at least one sample.
final class PassSamplesTests: XCTestCase {
    /// The YAML samples in the doc comments of a Swift source.
    static func samples(in source: String) -> [String] {
        var result: [String] = []
        var current: [String]?
        for line in source.components(separatedBy: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("///") else { current = nil; continue }
            let body = t.dropFirst(3).hasPrefix(" ") ? String(t.dropFirst(4)) : String(t.dropFirst(3))
            if current == nil, body.hasPrefix("```yaml") { current = []; continue }
            if current != nil, body.hasPrefix("```") { result.append(current!.joined(separator: "\n")); current = nil; continue }
            current?.append(body)
        }
        return result
    }

    /// A sample as a whole recipe: a `stages:` sample as it is, a list of pass entries inside one stage; with
    /// calibration settings that fit the tiny model.
    static func recipeText(_ sample: String) -> String {
        var text = "lancet: 1\ncalibration: {data: c4.txt, samples: 4, context: 16}\n"
        if sample.hasPrefix("stages:") { text += sample } else {
            text += "stages:\n  - passes:\n" + sample.components(separatedBy: "\n").map { "      " + $0 }.joined(separator: "\n")
        }
        return text + "\n"
    }

    func testEveryPassHasADocumentedSampleThatParsesAndValidates() throws {
        let root = ExamplePluginBuild.packageRoot
        let fm = FileManager.default
        var files: [URL] = []
        for folder in try fm.contentsOfDirectory(atPath: root.appendingPathComponent("Sources").path) where folder.hasPrefix("LancetPasses") {
            let dir = root.appendingPathComponent("Sources/\(folder)")
            files += try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }.map { dir.appendingPathComponent($0) }
        }
        let example = root.appendingPathComponent("Examples/ExamplePass/Sources/ExamplePass")
        files += try fm.contentsOfDirectory(atPath: example.path).filter { $0.hasSuffix(".swift") }.map { example.appendingPathComponent($0) }

        let registry = try BuiltinPasses.registry()
        #if os(Linux)
        _ = try PluginLoader.load(path: try ExamplePluginBuild.library.get(), into: registry)
        #endif
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 12                                // room for a sample that removes 8 blocks
        let model = TinyLlama.make(sizes)
        var documented = Set<String>()
        var count = 0
        for file in files.sorted(by: { $0.path < $1.path }) {
            for sample in Self.samples(in: try String(contentsOf: file, encoding: .utf8)) {
                count += 1
                let where_ = "\(file.lastPathComponent), sample:\n\(sample)"
                let recipe: Recipe
                do { recipe = try RecipeParser.parse(Self.recipeText(sample), file: file.lastPathComponent) } catch {
                    XCTFail("does not parse: \(error)\n\(where_)")
                    continue
                }
                let problems = RecipeValidator.validate(recipe, registry: registry, model: model, checkFiles: false)
                XCTAssertEqual(problems.map(\.description), [], where_)
                for stage in recipe.stages { for pass in stage.passes { documented.insert(pass.name) } }
            }
        }
        XCTAssertGreaterThan(count, 5)
        let registered = Set(registry.all.map(\.name))
        XCTAssertEqual(registered.subtracting(documented), [], "registered passes without a documented YAML sample")
    }

    func testASampleIsReadFromADocComment() {
        let source = "/// A pass.\n///\n/// ```yaml\n/// - wanda: {sparsity: 0.5}\n///   targets: [\"blocks.*.mlp.*\"]\n/// ```\nstruct P {}\n"
        XCTAssertEqual(Self.samples(in: source), ["- wanda: {sparsity: 0.5}\n  targets: [\"blocks.*.mlp.*\"]"])
        XCTAssertTrue(Self.recipeText(Self.samples(in: source)[0]).contains("  - passes:\n      - wanda: {sparsity: 0.5}\n        targets:"))
    }
}
