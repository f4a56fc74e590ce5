import Foundation
import Lancet
import XCTest

/// `RecipeCheck`: every problem of a recipe file in one report, shape and validation together.
final class RecipeCheckTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try makeRecipeFolder()
        try TinyLlama.make(seed: 5).save(to: dir + "/model.gguf", overwrite: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func check(_ yaml: String) throws -> RecipeCheck {
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/recipe.yaml"))
        return RecipeCheck(path: dir + "/recipe.yaml", registry: try testRegistry())
    }

    func testShapeProblemsAndValidationProblemsComeInOneReport() throws {
        let c = try check("""
            lancet: 1
            model: model.gguf
            calibraton: {data: calib.txt}
            stages:
              - passes:
                  - fake-prnue: {sparsity: 0.5}
                  - fake-prune: {sparsty: 0.5}
                    targets: ["blocks.99.*"]
                  - fake-prune: {sparsity: 1.5}
                    fit: lsq
            output: out/x.bin

            """)
        let paths = c.errors.map(\.path)
        XCTAssertEqual(paths, ["calibraton", "stages[0].passes[2].fit", "stages[0].passes[0]", "stages[0].passes[1].fake-prune.sparsty",
                               "stages[0].passes[1].targets[0]", "stages[0].passes[2].fake-prune.sparsity", "output"], "\(c.errors)")
        XCTAssertNotNil(c.recipe)
        XCTAssertNotNil(c.model)
    }

    func testASettingWithATypeErrorIsReportedOnceNotAgainAtItsDefault() throws {
        let c = try check("lancet: 2\nmodel: model.gguf\ncalibration: {data: calib.txt, samples: many, context: 32}\nstages:\n  - passes: [fake-prune]\n")
        XCTAssertEqual(c.errors.map(\.path), ["lancet", "calibration.samples"], "\(c.errors)")
    }

    func testAMissingModelSaysOnceThatTheModelChecksDidNotRun() throws {
        let c = try check("lancet: 1\nmodel: nowhere.gguf\nstages:\n  - passes:\n      - fake-prune: {sparsity: 0.5}\n        targets: [\"blocks.99.*\"]\n")
        XCTAssertEqual(c.errors.count, 1, "\(c.errors)")
        XCTAssertTrue(c.errors[0].description.contains("file not found"), "\(c.errors)")
        XCTAssertTrue(c.errors[0].description.contains("the checks against the model did not run"), "\(c.errors)")
    }

    func testAnUnreadableYAMLIsOneProblemAndNoRecipe() throws {
        let c = try check("lancet: 1\nstages: [\n")
        XCTAssertNil(c.recipe)
        XCTAssertEqual(c.errors.count, 1)
    }

    func testAHuggingFaceOutputIsRefusedForAPassThatMayLeaveBlocksOfDifferentSizes() throws {
        let c = try check("""
            lancet: 1
            model: model.gguf
            calibration: {data: calib.txt, samples: 2, context: 32}
            stages:
              - passes:
                  - prune-structured: {sparsity: 0.25}
            output: out/hf

            """)
        XCTAssertEqual(c.errors.map(\.path), ["output"], "\(c.errors)")
        XCTAssertTrue(c.errors[0].reason.contains("attention_share unset"), c.errors[0].reason)
        let gguf = try check("lancet: 1\nmodel: model.gguf\ncalibration: {data: calib.txt, samples: 2, context: 32}\nstages:\n  - passes: [prune-structured]\noutput: out/m.gguf\n")
        XCTAssertEqual(gguf.errors, [], "GGUF (deci) holds any block sizes")
        let removal = try check("lancet: 1\nmodel: model.gguf\ncalibration: {data: calib.txt, samples: 2, context: 32}\nstages:\n  - passes: [{remove-layers: {count: 1}}]\noutput: out/hf\n")
        XCTAssertEqual(removal.errors, [], "removing whole blocks leaves blocks alike")
        let span = try check("lancet: 1\nmodel: model.gguf\ncalibration: {data: calib.txt, samples: 2, context: 32}\nstages:\n  - passes: [{replace-span: {count: 1}}]\noutput: out/hf/\n")
        XCTAssertEqual(span.errors.map(\.path), ["output"], "\(span.errors)")
        XCTAssertTrue(span.errors.first?.reason.contains("no attention sub-layer") == true, "\(span.errors)")
    }
}
