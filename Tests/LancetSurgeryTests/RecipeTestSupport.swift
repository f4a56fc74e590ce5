import Foundation
import Lancet
import XCTest

/// A test-only block pass with the options of a pruning pass; its init rejects sparsity outside [0, 1).
struct FakePrune: BlockPass {
    struct Options: Codable, Sendable {
        var sparsity = 0.5
        var pattern = "unstructured"
    }
    static let name = "fake-prune"
    static let summary = "Test pass: options like a pruning pass, cuts nothing."
    static let defaultOptions = Options()
    static let optionHelp = ["sparsity": "Fraction of weights to cut.", "pattern": "unstructured or N:M."]
    let options: Options

    init(options: Options) throws {
        guard options.sparsity >= 0, options.sparsity < 1 else { throw PassOptionError("sparsity", "must be in [0, 1), got \(options.sparsity)") }
        self.options = options
    }

    func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
}

/// A test-only calibrated block pass.
struct FakeCalibrated: BlockPass {
    struct Options: Codable, Sendable { var sparsity = 0.5 }
    static let name = "fake-calibrated"
    static let summary = "Test pass that needs calibration data."
    static let defaultOptions = Options()
    static let needsCalibration = true
    init(options: Options) throws {}
    func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
}

/// A test-only model pass whose static check rejects removing more blocks than the model has.
struct FakeRemove: ModelPass {
    struct Options: Codable, Sendable { var blocks = 1 }
    static let name = "fake-remove"
    static let summary = "Test pass: checks a block count against the model."
    static let defaultOptions = Options()
    let options: Options
    init(options: Options) throws { self.options = options }
    func validate(model: Model, targets: TargetSelection) throws {
        guard options.blocks < model.blocks.count else { throw PassOptionError("blocks", "must be less than the model's \(model.blocks.count) blocks, got \(options.blocks)") }
    }
    func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport { PassReport(pass: Self.name) }
}

/// The registry the recipe tests validate against: the built-in passes plus the fakes.
func testRegistry() throws -> PassRegistry {
    try BuiltinPasses.registry(extra: [[FakePrune.self, FakeCalibrated.self, FakeRemove.self]])
}

/// A fresh folder with the files a recipe refers to: `model.gguf` (placeholder bytes; tests pass the
/// model itself), and `calib.txt` and `eval.txt` holding `sampleText()`.
func makeRecipeFolder() throws -> String {
    let dir = NSTemporaryDirectory() + "lancet-recipe-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try Data("placeholder\n".utf8).write(to: URL(fileURLWithPath: dir + "/model.gguf"))
    for name in ["calib.txt", "eval.txt"] {
        try Data(sampleText().utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    return dir
}

/// About 4 KB of seeded English-like text (words drawn from a small list), enough for a few
/// calibration windows of 32 tokens.
func sampleText(words: Int = 700, seed: UInt64 = 1) -> String {
    let vocabulary = ["the", "model", "cuts", "a", "block", "and", "fits", "its", "weights", "on", "calibration", "text,", "then",
                      "measures", "perplexity.", "Every", "pass", "reads", "statistics", "of", "what", "remains", "après", "naïve"]
    var g = CaseGenerator(state: seed)
    return (0..<words).map { _ in g.pick(vocabulary) }.joined(separator: " ") + "\n"
}

/// The error `body` throws, which must be a `RecipeError`.
func recipeError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> RecipeError? {
    do {
        _ = try body()
        XCTFail("expected a RecipeError", file: file, line: line)
    } catch let e as RecipeError {
        return e
    } catch {
        XCTFail("expected a RecipeError, got \(error)", file: file, line: line)
    }
    return nil
}

/// Asserts that `error` is at `line:column` of `file` and its printed form contains every fragment.
func assertError(_ error: RecipeError?, at line: Int, _ column: Int, in file: String = "recipe.yaml", contains fragments: [String],
                 file sourceFile: StaticString = #filePath, sourceLine: UInt = #line) {
    guard let error else { return XCTFail("no error", file: sourceFile, line: sourceLine) }
    XCTAssertEqual(error.location, SourceLocation(file: file, line: line, column: column), "\(error)", file: sourceFile, line: sourceLine)
    for f in fragments { XCTAssertTrue(error.description.contains(f), "'\(f)' not in: \(error)", file: sourceFile, line: sourceLine) }
}
