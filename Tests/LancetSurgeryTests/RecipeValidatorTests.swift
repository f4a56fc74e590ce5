import Foundation
import Lancet
import XCTest

final class RecipeValidatorTests: XCTestCase {
    var dir = ""
    let model = TinyLlama.make()

    override func setUpWithError() throws { dir = try makeRecipeFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A recipe in the test folder: the header (model, calibration, evaluation, output) then `passes`
    /// as the one stage's pass list, starting on line 5.
    func recipe(_ passes: String, header: String? = nil) throws -> Recipe {
        let head = header ?? "lancet: 1\nmodel: model.gguf\ncalibration: {data: calib.txt, samples: 4, context: 32}\nevaluate: {data: eval.txt, context: 256}\n"
        let yaml = head + "stages:\n  - name: s\n    passes:\n" + passes + "output: out/result.gguf\n"
        return try RecipeParser.parse(yaml, file: "recipe.yaml", baseDirectory: dir)
    }

    func problems(_ r: Recipe, model: Model? = TinyLlama.make()) throws -> [RecipeError] {
        RecipeValidator.validate(r, registry: try testRegistry(), model: model)
    }

    func testAValidRecipeHasNoProblems() throws {
        let r = try recipe("      - fake-prune: {sparsity: 0.5}\n        targets: [\"blocks.*.mlp.*\"]\n        ignore: [\"blocks.0.*\"]\n        fit: lstsq\n      - fake-calibrated\n      - fake-remove: {blocks: 1}\n")
        XCTAssertEqual(try problems(r), [])
    }

    func testATypoInAPassNameIsLocatedWithTheNearestName() throws {
        let e = try problems(try recipe("      - fake-prnue: {sparsity: 0.5}\n"))
        XCTAssertEqual(e.count, 1)
        assertError(e.first, at: 8, 9, contains: ["recipe.yaml:8:9 stages[0].passes[0]: unknown pass 'fake-prnue' (did you mean 'fake-prune'?)"])
    }

    func testAnUnknownOptionIsLocatedWithTheNearestName() throws {
        let e = try problems(try recipe("      - fake-prune:\n          sparsty: 0.5\n"))
        assertError(e.first, at: 9, 11, contains: ["stages[0].passes[0].fake-prune.sparsty: unknown option 'sparsty' (did you mean 'sparsity'?)"])
    }

    func testAnOptionOfTheWrongTypeIsLocated() throws {
        let e = try problems(try recipe("      - fake-prune: {pattern: 2:4, sparsity: high}\n"))
        assertError(e.first, at: 8, 36, contains: ["stages[0].passes[0].fake-prune.sparsity: expected a number"])
    }

    func testAnOptionOutOfRangeIsReportedByThePass() throws {
        let e = try problems(try recipe("      - fake-prune: {sparsity: 1.5}\n"))
        assertError(e.first, at: 8, 22, contains: ["recipe.yaml:8:22 stages[0].passes[0].fake-prune.sparsity: must be in [0, 1), got 1.5"])
    }

    func testAMissingModelFileIsNamedWithItsKeyAndPath() throws {
        try FileManager.default.removeItem(atPath: dir + "/model.gguf")
        let e = try problems(try recipe("      - fake-prune\n"), model: nil)
        assertError(e.first, at: 2, 8, contains: ["model: file not found: \(dir)/model.gguf"])
        XCTAssertEqual(e.count, 1)
    }

    func testMissingCalibrationAndEvaluationFilesAreNamed() throws {
        try FileManager.default.removeItem(atPath: dir + "/calib.txt")
        try FileManager.default.removeItem(atPath: dir + "/eval.txt")
        let e = try problems(try recipe("      - fake-prune\n"))
        XCTAssertEqual(e.map(\.path), ["calibration.data", "evaluate.data[0]"])
        assertError(e[0], at: 3, 21, contains: ["calibration.data: file not found: \(dir)/calib.txt"])
        assertError(e[1], at: 4, 18, contains: ["file not found: \(dir)/eval.txt"])
    }

    func testATargetThatMatchesNothingInTheModelIsRejected() throws {
        let e = try problems(try recipe("      - fake-prune:\n        targets: [\"blocks.*.mlp.*\", \"blocks.99.*\"]\n        ignore: [nothing.here]\n"))
        XCTAssertEqual(e.map(\.path), ["stages[0].passes[0].targets[1]", "stages[0].passes[0].ignore[0]"])
        assertError(e[0], at: 8, 9, contains: ["pattern 'blocks.99.*' matches nothing in the model (blocks.0 … blocks.1"])
    }

    func testAPassesOwnModelCheckIsRun() throws {
        let e = try problems(try recipe("      - fake-remove: {blocks: 5}\n"))
        assertError(e.first, at: 8, 23, contains: ["stages[0].passes[0].fake-remove.blocks: must be less than the model's 2 blocks, got 5"])
        XCTAssertEqual(try problems(try recipe("      - fake-remove: {blocks: 5}\n"), model: nil), [], "model checks need the model")
    }

    func testCalibratedPassesAndFittingNeedCalibrationData() throws {
        let header = "lancet: 1\nmodel: model.gguf\n\n\n"
        let e = try problems(try recipe("      - fake-calibrated\n      - fake-prune:\n        fit: lstsq\n      - fake-prune\n", header: header))
        XCTAssertEqual(e.count, 2)
        assertError(e[0], at: 8, 9, contains: ["pass 'fake-calibrated' needs calibration data"])
        assertError(e[1], at: 9, 9, contains: ["stages[0].passes[1].fit: fit method 'lstsq' fits on calibration data"])
    }

    func testTheOutputMustBeGGUFOrAFolderWithAWritableParent() throws {
        func outputProblems(_ output: String) throws -> [String] {
            var r = try recipe("      - fake-prune\n")
            r.output = RecipePaths.resolve(output, against: dir)
            return try problems(r).map(\.reason)
        }
        XCTAssertEqual(try outputProblems("deep/new/folders/x.gguf"), [])
        XCTAssertEqual(try outputProblems("folder-output/"), [])
        XCTAssertEqual(try outputProblems("folder-output"), [])
        XCTAssertEqual(try outputProblems("out/x.lancet"), [])
        XCTAssertEqual(try outputProblems("x.bin").first?.contains("must be a .gguf file, a .lancet or .safetensors archive or a folder"), true)
        XCTAssertEqual(try outputProblems("calib.txt/x.gguf").first?.contains("is a file"), true)
        XCTAssertEqual(try outputProblems("model.gguf").first?.contains("is the input model"), true)
    }

    func testCalibratingOnAnEvaluationFileIsRejected() throws {
        let header = "lancet: 1\nmodel: model.gguf\ncalibration: {data: eval.txt}\nevaluate: {data: [eval.txt]}\n"
        let e = try problems(try recipe("      - fake-prune\n", header: header))
        assertError(e.first, at: 4, 19, contains: ["evaluate.data[0]: is also the calibration data"])
    }

    func testEveryProblemIsReportedInOneCallBeforeAnyCompute() throws {
        try FileManager.default.removeItem(atPath: dir + "/calib.txt")
        let passes = """
                  - fake-prnue
                  - fake-prune: {sparsty: 0.5}
                  - fake-prune: {sparsity: 2}
                    targets: [blocks.7.*]
                  - fake-remove: {blocks: 9}

            """
        let e = try problems(try recipe(passes))
        XCTAssertEqual(e.map(\.path), ["stages[0].passes[0]", "stages[0].passes[1].fake-prune.sparsty", "stages[0].passes[2].fake-prune.sparsity", "stages[0].passes[2].targets[0]",
                                       "stages[0].passes[3].fake-remove.blocks", "calibration.data"])
    }

    func testRecipesBuiltInCodeAreCheckedToo() throws {
        var fit = FitSpec(method: .regional)
        fit.steps = 0
        fit.learningRate = -1
        let r = Recipe(calibration: CalibrationSpec(data: dir + "/calib.txt", samples: 0), stages: [Stage(name: "s", passes: [PassInvocation(name: "fake-prune", fit: fit)])])
        let paths = try problems(r).map(\.path)
        XCTAssertEqual(paths, ["calibration.samples", "fit.steps", "fit.learning_rate"])
    }
}
