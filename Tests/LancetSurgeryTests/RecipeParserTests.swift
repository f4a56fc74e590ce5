import Foundation
import Lancet
import XCTest

final class RecipeParserTests: XCTestCase {
    /// Parses `yaml` as `recipe.yaml` in the folder `/r`.
    func parse(_ yaml: String) throws -> Recipe { try RecipeParser.parse(yaml, file: "recipe.yaml", baseDirectory: "/r") }
    func error(_ yaml: String) -> RecipeError? { recipeError { try parse(yaml) } }

    let full = """
        lancet: 1
        model: models/m.gguf
        calibration: {data: ../data/c4.json.gz, samples: 64, context: 512, seed: 7}
        stages:
          - name: sparsify
            passes:
              - fake-prune: {sparsity: 0.5, pattern: "2:4"}
                targets: ["blocks.*.mlp.*", "blocks.*.attn.*"]
                ignore: ["blocks.0.*"]
                fit: {method: lstsq, damping: 0.02}
              - fake-prune
              - fake-remove:
                fit: regional
        evaluate: {data: ../data/wiki.test.raw, context: 1024, max_windows: 16}
        output: out/x.gguf
        """

    func testParsesEveryKeyAndResolvesPathsAgainstTheRecipeFolder() throws {
        let r = try parse(full)
        XCTAssertEqual(r.version, 1)
        XCTAssertEqual(r.model, "/r/models/m.gguf")
        XCTAssertEqual(r.calibration, CalibrationSpec(data: "/data/c4.json.gz", samples: 64, context: 512, seed: 7))
        XCTAssertEqual(r.stages.map(\.name), ["sparsify"])
        let passes = r.stages[0].passes
        XCTAssertEqual(passes.map(\.name), ["fake-prune", "fake-prune", "fake-remove"])
        XCTAssertEqual(passes[0].options.keys, ["sparsity", "pattern"])
        XCTAssertEqual(passes[0].selection, TargetSelection(targets: ["blocks.*.mlp.*", "blocks.*.attn.*"], ignore: ["blocks.0.*"]))
        XCTAssertEqual(passes[0].fit, FitSpec(method: .lstsq, damping: 0.02))
        XCTAssertEqual(passes[0].location, SourceLocation(file: "recipe.yaml", line: 7, column: 9))
        XCTAssertEqual(passes[0].path, "stages[0].passes[0]")
        XCTAssertEqual(passes[1].options, .object([]))
        XCTAssertEqual(passes[2].options, .object([]))
        XCTAssertEqual(passes[2].fit, FitSpec(method: .regional))
        XCTAssertEqual(r.evaluate, EvaluateSpec(data: ["/data/wiki.test.raw"], context: 1024, maxWindows: 16))
        XCTAssertEqual(r.output, "/r/out/x.gguf")
        XCTAssertEqual(r.text, full)
        XCTAssertEqual(r.source, "recipe.yaml")
        XCTAssertEqual(r.locations["model"], SourceLocation(file: "recipe.yaml", line: 2, column: 8))
    }

    func testDefaultsApplyWhenOnlyStagesAreGiven() throws {
        let r = try parse("stages:\n  - passes: [fake-prune]\n")
        XCTAssertEqual(r.version, 1)
        XCTAssertNil(r.model)
        XCTAssertEqual(r.calibration, CalibrationSpec())
        XCTAssertEqual(r.stages, [Stage(name: "stage1", passes: [PassInvocation(name: "fake-prune")])])
        XCTAssertNil(r.evaluate)
        XCTAssertNil(r.output)
    }

    func testEvaluateDataIsAStringOrAList() throws {
        let one = try parse("stages: [{passes: [a]}]\nevaluate: {data: /w/test.raw}\n")
        XCTAssertEqual(one.evaluate, EvaluateSpec(data: ["/w/test.raw"]))
        let two = try parse("stages: [{passes: [a]}]\nevaluate: {data: [a.txt, /w/b.txt], context: 128}\n")
        XCTAssertEqual(two.evaluate, EvaluateSpec(data: ["/r/a.txt", "/w/b.txt"], context: 128))
        assertError(error("stages: [{passes: [a]}]\nevaluate: {context: 128}\n"), at: 2, 1, contains: ["evaluate.data: missing 'data'"])
    }

    func testAbsoluteHomeAndDotDotPathsResolve() {
        XCTAssertEqual(RecipePaths.resolve("/a/./b/../c.gguf", against: "/r"), "/a/c.gguf")
        XCTAssertEqual(RecipePaths.resolve("../../x", against: "/r/s"), "/x")
        XCTAssertEqual(RecipePaths.resolve("out/folder/", against: "/r"), "/r/out/folder/")
        XCTAssertEqual(RecipePaths.resolve("~/m.gguf", against: "/r"), NSHomeDirectory() + "/m.gguf")
        XCTAssertEqual(RecipePaths.directory(of: "/a/b/recipe.yaml"), "/a/b")
    }

    func testFitIsABareMethodOrAMapping() throws {
        let r = try parse("stages: [{passes: [{a: {}, fit: lstsq}, {b: {}, fit: {method: regional, steps: 20, learning_rate: 0.001, batch: 2}}, {c: {}, fit: {method: lstsq, router_rounds: 3}}]}]")
        XCTAssertEqual(r.stages[0].passes[0].fit, FitSpec(method: .lstsq))
        XCTAssertEqual(r.stages[0].passes[1].fit, FitSpec(method: .regional, steps: 20, learningRate: 0.001, batch: 2))
        XCTAssertEqual(r.stages[0].passes[2].fit, FitSpec(method: .lstsq, routerRounds: 3))
        XCTAssertEqual(FitSpec(method: .lstsq, routerRounds: 0).optionValue.map { "\($0)" }?.contains("router_rounds"), true)
    }

    func testFitTeacherIsParsedPrintedAndEncodedOnlyWhenNotTheDefault() throws {
        let r = try parse("stages: [{passes: [{a: {}, fit: {method: lstsq, teacher: model}}, {b: {}, fit: {method: regional, teacher: block}}]}]")
        XCTAssertEqual(r.stages[0].passes[0].fit, FitSpec(method: .lstsq, teacher: .model))
        XCTAssertEqual(r.stages[0].passes[1].fit, FitSpec(method: .regional))
        let printed = FitSpec(method: .lstsq, teacher: .model).optionValue.map { "\($0)" } ?? ""
        XCTAssertTrue(printed.contains("teacher") && printed.contains("model"), printed)
        XCTAssertEqual(FitSpec(method: .lstsq).optionValue.map { "\($0)" }?.contains("teacher"), false)
        // The default teacher is left out of the encoded settings (run fingerprints of earlier recipes unchanged)
        // and read back as the default.
        let plain = String(decoding: try JSONEncoder().encode(FitSpec(method: .lstsq)), as: UTF8.self)
        XCTAssertFalse(plain.contains("teacher"), plain)
        let model = try JSONEncoder().encode(FitSpec(method: .lstsq, teacher: .model))
        XCTAssertEqual(try JSONDecoder().decode(FitSpec.self, from: model).teacher, .model)
        XCTAssertEqual(try JSONDecoder().decode(FitSpec.self, from: Data(plain.utf8)).teacher, .block)
    }

    // MARK: Errors, each with its line and column

    func testUnknownTopLevelKeySuggestsTheNearestName() {
        let e = error("lancet: 1\nstages: [{passes: [a]}]\ncalibraton: {samples: 4}\n")
        assertError(e, at: 3, 1, contains: ["recipe.yaml:3:1 calibraton: unknown key 'calibraton' (did you mean 'calibration'?)"])
    }

    func testUnknownNestedKeySuggestsTheNearestName() {
        let e = error("stages: [{passes: [a]}]\ncalibration: {data: x, sampels: 4}\n")
        assertError(e, at: 2, 24, contains: ["calibration.sampels: unknown key 'sampels' (did you mean 'samples'?)", "valid keys: data, samples, context, seed"])
        assertError(error("stages:\n  - name: s\n    pases: [a]\n"), at: 3, 5, contains: ["stages[0].pases", "did you mean 'passes'?"])
    }

    func testWrongTypesAreNamedWithTheValueAsWritten() {
        assertError(error("stages: [{passes: [a]}]\ncalibration: {samples: many}\n"), at: 2, 24,
                    contains: ["calibration.samples: expected an integer, got 'many'"])
        assertError(error("stages: [{passes: [a]}]\ncalibration: {context: 2.5}\n"), at: 2, 24, contains: ["expected an integer, got '2.5'"])
        assertError(error("stages: [{passes: [a]}]\nmodel: [a, b]\n"), at: 2, 8, contains: ["model: expected a path, got a list"])
        assertError(error("stages: {a: 1}\n"), at: 1, 10, contains: ["stages: expected a list of stages"])
        assertError(error("stages: [{passes: [a]}]\ncalibration: 5\n"), at: 2, 14, contains: ["calibration must be a mapping"])
    }

    func testMissingOrEmptyStagesAreRejected() {
        assertError(error("lancet: 1\nmodel: m.gguf\n"), at: 1, 1, contains: ["stages: missing 'stages'"])
        assertError(error("stages: []\n"), at: 1, 9, contains: ["stages: needs at least one stage"])
        assertError(error("stages:\n  - name: s\n"), at: 2, 5, contains: ["stages[0].passes: missing 'passes'"])
        assertError(error("stages:\n  - name: s\n    passes: []\n"), at: 3, 13, contains: ["stages[0].passes: a stage needs at least one pass"])
    }

    func testAPassEntryWithTwoPassNamesIsRejected() {
        let yaml = """
            stages:
              - passes:
                  - fake-prune: {sparsity: 0.5}
                    fake-remove: {blocks: 1}
            """
        assertError(error(yaml), at: 4, 9, contains: ["stages[0].passes[0].fake-remove", "names exactly one pass, found 'fake-prune', 'fake-remove'"])
        assertError(error("stages: [{passes: [{targets: [a]}]}]"), at: 1, 21, contains: ["needs a pass name key"])
    }

    func testPassOptionsMustBeAMapping() {
        assertError(error("stages: [{passes: [{fake-prune: 0.5}]}]"), at: 1, 33, contains: ["stages[0].passes[0].fake-prune", "must be a mapping"])
    }

    func testOnlyVersionOneIsRead() {
        assertError(error("lancet: 2\nstages: [{passes: [a]}]\n"), at: 1, 9, contains: ["lancet: unsupported recipe format version 2; this Lancet reads version 1"])
        assertError(error("lancet: one\nstages: [{passes: [a]}]\n"), at: 1, 9, contains: ["lancet: expected an integer"])
    }

    func testSamplesAndContextMustBePositive() {
        assertError(error("stages: [{passes: [a]}]\ncalibration: {samples: 0}\n"), at: 2, 24, contains: ["calibration.samples: must be positive, got 0"])
        assertError(error("stages: [{passes: [a]}]\ncalibration: {context: -5}\n"), at: 2, 24, contains: ["calibration.context: must be positive, got -5"])
        assertError(error("stages: [{passes: [a]}]\nevaluate: {data: x, max_windows: 0}\n"), at: 2, 34, contains: ["evaluate.max_windows: must be positive"])
        assertError(error("stages: [{passes: [a]}]\ncalibration: {seed: -1}\n"), at: 2, 21, contains: ["calibration.seed: expected a non-negative integer"])
    }

    func testSamplerIsReadAndUnknownSamplersAreNamed() throws {
        let r = try parse("stages: [{passes: [a]}]\ncalibration: {data: c4.txt, sampler: python}\n")
        XCTAssertEqual(r.calibration.sampler, .python)
        assertError(error("stages: [{passes: [a]}]\ncalibration: {sampler: pyton}\n"), at: 2, 24,
                    contains: ["calibration.sampler: unknown sampler 'pyton' (did you mean 'python'?); valid samplers: lancet, python"])
    }

    func testUnknownFitMethodListsTheValidOnes() {
        assertError(error("stages: [{passes: [{a: {}, fit: lsq}]}]"), at: 1, 33,
                    contains: ["stages[0].passes[0].fit: unknown fit method 'lsq' (did you mean 'lstsq'?); valid methods: none, lstsq, regional"])
        assertError(error("stages: [{passes: [{a: {}, fit: {method: regional, step: 3}}]}]"), at: 1, 52,
                    contains: ["stages[0].passes[0].fit.step: unknown key 'step' (did you mean 'steps'?)"])
        assertError(error("stages: [{passes: [{a: {}, fit: {damping: 0.1}}]}]"), at: 1, 34, contains: ["fit: missing 'method'"])
    }

    func testFitSettingsOutOfRangeAreRejected() {
        assertError(error("stages: [{passes: [{a: {}, fit: {method: lstsq, damping: -1}}]}]"), at: 1, 58, contains: ["fit.damping: must be a finite number ≥ 0, got -1.0"])
        assertError(error("stages: [{passes: [{a: {}, fit: {method: regional, steps: 0}}]}]"), at: 1, 59, contains: ["fit.steps: must be positive, got 0"])
        assertError(error("stages: [{passes: [{a: {}, fit: {method: regional, learning_rate: 0}}]}]"), at: 1, 67, contains: ["fit.learning_rate: must be a finite number > 0"])
        assertError(error("stages: [{passes: [{a: {}, fit: {method: lstsq, router_rounds: -1}}]}]"), at: 1, 64, contains: ["fit.router_rounds:"])
        assertError(error("stages: [{passes: [{a: {}, fit: {method: lstsq, teacher: modle}}]}]"), at: 1, 58,
                    contains: ["fit.teacher: unknown fit teacher 'modle' (did you mean 'model'?); valid teachers: block, model"])
    }

    func testInvalidYAMLIsReportedWithYamsLineAndColumn() {
        let e = error("lancet: 1\nstages: [{passes: [a]}\nmodel: x\n")
        XCTAssertEqual(e?.location.line, 3)
        XCTAssertGreaterThan(e?.location.column ?? 0, 0)
        XCTAssertTrue(e?.reason.hasPrefix("invalid YAML: ") == true, "\(String(describing: e))")
        assertError(error("lancet: 1\nlancet: 1\nstages: [{passes: [a]}]\n"), at: 1, 1, contains: ["duplicate key 'lancet'"])
        let tab = error("stages:\n\t- passes: [a]\n")
        XCTAssertEqual(tab?.location.line, 2)
    }

    func testEmptyFileIsRejected() {
        assertError(error(""), at: 1, 1, contains: ["the recipe is empty"])
        assertError(error("# just a comment\n\n"), at: 1, 1, contains: ["the recipe is empty"])
        assertError(error("- a\n- b\n"), at: 1, 1, contains: ["a recipe must be a mapping"])
    }

    func testEveryIndependentProblemIsCollected() {
        let yaml = "lancet: 3\ncalibration: {samples: x, seed: -1}\nstages: [{passes: [{a: 1}]}]\noutptu: o.gguf\n"
        let (recipe, errors) = RecipeParser.parseCollectingErrors(yaml, file: "recipe.yaml", baseDirectory: "/r")
        XCTAssertNil(recipe)
        XCTAssertEqual(errors.map(\.location.line), errors.map(\.location.line).sorted(), "reported in source order")
        XCTAssertEqual(Set(errors.map(\.path)), ["outptu", "lancet", "calibration.samples", "calibration.seed", "stages[0].passes[0].a"])
    }

    func testQuotedNumbersStayStringsAndOptionalQuotesDoNotMatter() throws {
        let a = try parse("stages: [{passes: [{p: {x: \"0.5\", y: \"abc\", z: 'true'}}]}]")
        let b = try parse("stages: [{passes: [{p: {x: \"0.5\", y: abc, z: \"true\"}}]}]")
        XCTAssertEqual(a, b)
        guard case let .object(entries) = a.stages[0].passes[0].options else { return XCTFail() }
        XCTAssertEqual(entries.map { $0.value.json as? String }, ["0.5", "abc", "true"])
        let c = try parse("stages: [{passes: [{p: {x: 0.5, n: ~, t: True}}]}]")
        guard case let .object(plain) = c.stages[0].passes[0].options else { return XCTFail() }
        XCTAssertEqual(plain[0].value.json as? Double, 0.5)
        XCTAssertTrue(plain[1].value.json is NSNull)
        XCTAssertEqual(plain[2].value.json as? Bool, true)
    }

    func testAMissingRecipeFileIsNamed() {
        assertError(recipeError { try RecipeParser.parse(contentsOf: "/nonexistent/recipe.yaml") }, at: 0, 0, in: "/nonexistent/recipe.yaml",
                    contains: ["cannot read the recipe file"])
    }
}
