import Foundation
import Lancet
import XCTest

final class RecipeRoundTripTests: XCTestCase {
    /// The package's root folder.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// YAML → Recipe → YAML → Recipe gives an equal recipe and the same canonical text.
    func assertRoundTrips(_ recipe: Recipe, file: StaticString = #filePath, line: UInt = #line) throws {
        let yaml = RecipePrinter.yaml(recipe)
        let again: Recipe
        do {
            again = try RecipeParser.parse(yaml, file: "printed.yaml", baseDirectory: "/elsewhere")
        } catch {
            return XCTFail("\(error)\n\(yaml)", file: file, line: line)
        }
        XCTAssertEqual(again, recipe, yaml, file: file, line: line)
        XCTAssertEqual(RecipePrinter.yaml(again), yaml, file: file, line: line)
        for stage in recipe.stages {
            XCTAssertEqual(try PipelineText.parse(PipelineText.render(stage.passes)), stage.passes, file: file, line: line)
        }
    }

    func testPrintsTheCanonicalYAML() throws {
        let r = try RecipeParser.parse("""
            model: m.gguf
            stages:
              - name: one
                passes:
                  - p: {sparsity: 0.5, pattern: "2:4", label: "a b"}
                    targets: "blocks.*.mlp.*"
                    fit: {method: lstsq}
                  - q
            evaluate: {data: e.txt, max_windows: 3}
            """, file: "r.yaml", baseDirectory: "/r")
        XCTAssertEqual(RecipePrinter.yaml(r), """
            lancet: 1
            model: /r/m.gguf
            stages:
              - name: one
                passes:
                  - p: {sparsity: 0.5, pattern: 2:4, label: "a b"}
                    targets: [blocks.*.mlp.*]
                    fit: lstsq
                  - q: {}
            evaluate: {data: /r/e.txt, context: 2048, max_windows: 3}

            """)
    }

    func testRoundTripsGeneratedRecipes() throws {
        var g = CaseGenerator(state: 7)
        let paths = ["/m/model.gguf", "/data/with space.txt", "/d/ünï.json.gz", "/o/out/", "/x/#hash.txt", "/q/\"quoted\".raw", "/p/a: b.txt"]
        for _ in 0..<300 {
            let stages = (0..<(1 + g.int(3))).map { i in
                Stage(name: g.pick(["sparsify", "stage \(i)", "s\(i)", "yes", "0.5", "-x"]) + "\(i)", passes: (0..<(1 + g.int(3))).map { _ in g.invocation() })
            }
            let calibration = g.int(3) == 0 ? CalibrationSpec() : CalibrationSpec(data: g.int(4) == 0 ? nil : g.pick(paths), samples: 1 + g.int(200),
                                                                                 context: 1 + g.int(4096), seed: g.next(),
                                                                                 sampler: g.pick(CalibrationSampler.allCases))
            let evaluate = g.int(2) == 0 ? nil : EvaluateSpec(data: (0..<(1 + g.int(3))).map { _ in g.pick(paths) }, context: 1 + g.int(4096),
                                                             maxWindows: g.int(2) == 0 ? nil : 1 + g.int(64))
            let recipe = Recipe(model: g.int(4) == 0 ? nil : g.pick(paths), calibration: calibration, stages: stages, evaluate: evaluate,
                                output: g.int(4) == 0 ? nil : g.pick(paths))
            try assertRoundTrips(recipe)
        }
    }

    func testEveryRecipeInTheRecipesFoldersParsesValidatesAndRoundTrips() throws {
        // recipes/, the results rows' recipes and the example plugin's recipes (its passes loaded from the built plugin).
        let folders = ["recipes", "recipes/results", "recipes/collapse", "Examples/ExamplePass/recipes"]
        let files = folders.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: Self.root + "/" + folder)) ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { folder + "/" + $0 }
        }
        for folder in folders { XCTAssertTrue(files.contains { $0.hasPrefix(folder + "/") && !$0.dropFirst(folder.count + 1).contains("/") }, "no recipe in \(folder)") }
        let registry = try testRegistry()
        #if os(Linux)
        _ = try PluginLoader.load(path: try ExamplePluginBuild.library.get(), into: registry)
        XCTAssertNotNil(registry.descriptor("shortgpt-remove"))
        #endif
        for name in files {
            let recipe = try RecipeParser.parse(contentsOf: Self.root + "/" + name)
            try assertRoundTrips(recipe)
            var known = recipe
            for i in known.stages.indices { known.stages[i].passes.removeAll { registry.descriptor($0.name) == nil } }
            known.stages.removeAll { $0.passes.isEmpty }
            if known.stages.isEmpty { continue }
            XCTAssertEqual(RecipeValidator.validate(known, registry: registry, model: nil, checkFiles: false), [], name)
        }
    }

    func testEveryYAMLExampleInTheRecipeGuideParsesAndRoundTrips() throws {
        let guide = try String(contentsOfFile: Self.root + "/Docs/Recipes.md", encoding: .utf8)
        // Every ```yaml block, marked or not (```yaml illustration: the canonical form, which names no real file).
        let blocks = guide.components(separatedBy: "```yaml").dropFirst().map { block in block.drop(while: { $0 != "\n" }).dropFirst().components(separatedBy: "```")[0] }
        XCTAssertGreaterThanOrEqual(blocks.count, 3)
        for block in blocks {
            let recipe = try RecipeParser.parse(block, file: "Recipes.md", baseDirectory: "/docs")
            try assertRoundTrips(recipe)
        }
    }

    func testEveryPipelineExampleInTheSyntaxGuideParsesRoundTripsAndValidates() throws {
        let guide = try String(contentsOfFile: Self.root + "/Docs/PipelineSyntax.md", encoding: .utf8)
        let lines = guide.components(separatedBy: "```pipeline\n").dropFirst().flatMap { $0.components(separatedBy: "```")[0].split(separator: "\n") }
        XCTAssertGreaterThanOrEqual(lines.count, 3)
        let registry = try BuiltinPasses.registry()
        for line in lines {
            let passes = try PipelineText.parse(String(line))
            XCTAssertEqual(try PipelineText.parse(PipelineText.render(passes)), passes, String(line))
            // What `lancet apply -p LINE --calibration FILE` would check before loading anything.
            let recipe = Recipe(calibration: CalibrationSpec(data: "/data/c4.json.gz"), stages: [Stage(name: "apply", passes: passes)], text: String(line))
            XCTAssertEqual(RecipeValidator.validate(recipe, registry: registry, model: nil, checkFiles: false), [], String(line))
        }
    }
}
