import Foundation
import XCTest

/// The conventions every `lancet` subcommand keeps (`Docs/CLI.md`): exit code 0 on success, 64 for usage,
/// option and recipe errors (with the subcommand's usage) and 1 for failures while working; `--version`;
/// suggestions for a mistyped subcommand; `--quiet`; `--json` on `run`, `apply` and `generate`; no output left
/// behind by a failed export; export limits caught by `validate`.
final class CommandLineConventionsTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-conventions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try CommandLineTool.writeFixtures(into: folder)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func lancet(_ arguments: String...) throws -> CommandLineTool.Result { try CommandLineTool.run(arguments, in: folder) }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: folder + "/" + name) }

    func testVersionPrintsTheVersionAndExitsZero() throws {
        let r = try lancet("--version")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0.1.0")
    }

    func testMistypedSubcommandGetsASuggestionAndExitCode64() throws {
        let r = try lancet("evl", "model.gguf")
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("unknown subcommand 'evl' (did you mean 'eval'?)"), r.stderr)
        let help = try lancet("help", "valdiate")
        XCTAssertEqual(help.status, 64)
        XCTAssertTrue(help.stderr.contains("unknown subcommand 'valdiate' (did you mean 'validate'?)"), help.stderr)
        let far = try lancet("frobnicate")
        XCTAssertEqual(far.status, 64)
        XCTAssertTrue(far.stderr.contains("unknown subcommand 'frobnicate'; subcommands: inspect,"), far.stderr)
    }

    /// Each subcommand's usage errors (64), failures while working (1) and successes (0).
    func testExitCodeTableOfEverySubcommand() throws {
        let table: [(arguments: [String], status: Int32, stderr: String)] = [
            (["inspect", "missing.gguf"], 64, "MODEL missing.gguf: no such file or folder"),
            (["inspect", "garbage.gguf"], 1, "garbage.gguf"),
            (["inspect", "model.gguf"], 0, ""),
            (["tokenize", "--model", "missing.gguf", "hi"], 64, "--model missing.gguf: no such file or folder"),
            (["tokenize", "--model", "model.gguf"], 64, "give either --file PATH or a TEXT argument"),
            (["tokenize", "--model", "model.gguf", "--file", "missing.txt"], 64, "--file missing.txt: no such file or folder"),
            (["tokenize", "--model", "garbage.gguf", "hi"], 1, "garbage.gguf"),
            (["tokenize", "--model", "model.gguf", "the cat"], 0, ""),
            (["eval", "missing.gguf", "--data", "eval.txt"], 64, "MODEL missing.gguf"),
            (["eval", "model.gguf", "--data", "missing.txt"], 64, "--data missing.txt: no such file or folder"),
            (["eval", "model.gguf", "--data", "eval.txt", "--context", "1"], 64, "--context must be at least 2"),
            (["eval", "garbage.gguf", "--data", "eval.txt"], 1, "garbage.gguf"),
            (["eval", "model.gguf", "--data", "eval.txt", "--context", "32", "--max-windows", "1"], 0, ""),
            (["generate", "missing.gguf", "--prompt", "hi"], 64, "MODEL missing.gguf"),
            (["generate", "model.gguf", "--prompt", "hi", "--max-tokens", "0"], 64, "--max-tokens must be at least 1"),
            (["generate", "garbage.gguf", "--prompt", "hi"], 1, "garbage.gguf"),
            (["generate", "model.gguf", "--prompt", "the cat", "--max-tokens", "3"], 0, ""),
            (["bench", "missing.gguf"], 64, "MODEL missing.gguf"),
            (["bench", "--frobnicate"], 64, "Unknown option '--frobnicate'"),
            (["run", "missing.yaml"], 64, "RECIPE missing.yaml: no such file or folder"),
            (["run", "recipe.yaml", "--output-type", "Q9"], 64, "--output-type: 'Q9' is not a GGUF output type"),
            (["apply", "missing.gguf", "-p", "magnitude", "-o", "o.gguf"], 64, "MODEL missing.gguf"),
            (["apply", "model.gguf", "-p", "magnitude(sparsity 0.5)", "-o", "o.gguf"], 64, "<pipeline>:1:20: expected '='"),
            (["apply", "model.gguf", "-p", "magnitdue", "-o", "o.gguf"], 64, "unknown pass 'magnitdue' (did you mean 'magnitude'?)"),
            (["apply", "model.gguf", "-p", "wanda", "-o", "o.gguf"], 64, "pass 'wanda' needs calibration data, but no --calibration FILE was given"),
            (["apply", "model.gguf", "-p", "magnitude", "-o", "o.gguf", "--calibration", "missing.txt"], 64, "--calibration missing.txt"),
            (["apply", "garbage.gguf", "-p", "magnitude", "-o", "o.gguf"], 1, "garbage.gguf"),
            (["apply", "model.gguf", "-p", "magnitude(sparsity=0.5)", "-o", "o.gguf"], 0, ""),
            (["convert", "missing.gguf", "c.gguf"], 64, "MODEL missing.gguf"),
            (["convert", "model.gguf", "c.gguf", "--output-type", "Q9"], 64, "--output-type: 'Q9' is not a GGUF output type"),
            (["convert", "garbage.gguf", "c.gguf"], 1, "garbage.gguf"),
            (["convert", "model.gguf", "c-hf"], 0, ""),
            (["validate", "missing.yaml"], 64, "cannot read the recipe file"),
            (["validate", "recipe.yaml", "--plugin", "missing.so"], 64, "--plugin missing.so: no such file or folder"),
            (["validate", "recipe.yaml"], 0, ""),
            (["passes", "--plugin", "missing.so"], 64, "--plugin missing.so"),
            (["passes"], 0, ""),
        ]
        for row in table {
            let r = try CommandLineTool.run(row.arguments, in: folder)
            let command = "lancet " + row.arguments.joined(separator: " ")
            XCTAssertEqual(r.status, row.status, "\(command)\n\(r.stderr)")
            XCTAssertTrue(row.stderr.isEmpty || r.stderr.contains(row.stderr), "\(command): expected '\(row.stderr)' in\n\(r.stderr)")
            XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain"), "\(command)\n\(r.stderr)")
            if row.status == 64, row.arguments.count > 1, !row.arguments[0].hasPrefix("-"), row.arguments[0] != "validate" {
                XCTAssertTrue(r.stderr.contains("Usage: lancet \(row.arguments[0])"), "\(command) prints its own usage:\n\(r.stderr)")
            }
        }
    }

    func testQuietLeavesStandardErrorEmptyOnSuccess() throws {
        let loud = try lancet("eval", "model.gguf", "--data", "eval.txt", "--context", "32", "--max-windows", "1")
        XCTAssertEqual(loud.status, 0, loud.stderr)
        XCTAssertTrue(loud.stderr.contains("eval 1/1"), loud.stderr)
        let quiet = try lancet("eval", "model.gguf", "--data", "eval.txt", "--context", "32", "--max-windows", "1", "--quiet")
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stderr, "")
        let run = try lancet("run", "recipe.yaml", "--quiet")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertTrue(run.stdout.contains("summary"), run.stdout)
        let apply = try lancet("apply", "model.gguf", "-p", "magnitude(sparsity=0.5)", "-o", "q.gguf", "-q")
        XCTAssertEqual(apply.status, 0, apply.stderr)
        XCTAssertEqual(apply.stderr, "")
        let failing = try lancet("eval", "model.gguf", "--data", "missing.txt", "--quiet")
        XCTAssertEqual(failing.status, 64)
        XCTAssertTrue(failing.stderr.contains("--data missing.txt"), "errors still print under --quiet")
    }

    /// Standard output of `--json` is one JSON object and nothing else.
    func jsonObject(_ r: CommandLineTool.Result, _ what: String) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, "\(what)\n\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try XCTUnwrap(object as? [String: Any], "\(what): stdout is not one JSON object:\n\(r.stdout)")
    }

    func testJSONOnRunApplyAndGenerateParses() throws {
        let run = try jsonObject(try lancet("run", "recipe.yaml", "--json"), "run --json")
        XCTAssertNotNil(run["report"])
        XCTAssertNotNil(run["after"])
        XCTAssertEqual((run["output"] as? String).map { ($0 as NSString).lastPathComponent }, "pruned.gguf")
        XCTAssertTrue(try lancet("run", "recipe.yaml", "--json", "--force").stderr.contains("block  pass"), "the table goes to standard error")

        let apply = try jsonObject(try lancet("apply", "model.gguf", "-p", "wanda(sparsity=0.5)", "--calibration", "text.txt", "--samples", "2",
                                              "--context", "32", "--eval", "eval.txt", "--eval-windows", "1", "--eval-context", "32", "-o", "w.gguf", "--json"), "apply --json")
        XCTAssertNotNil(apply["before"])
        XCTAssertEqual(((apply["report"] as? [String: Any])?["passes"] as? [Any])?.count, 2, "one report per block")

        let generate = try jsonObject(try lancet("generate", "model.gguf", "--prompt", "the cat", "--max-tokens", "4", "--json"), "generate --json")
        XCTAssertEqual(generate["model"] as? String, "model.gguf")
        XCTAssertNotNil(generate["text"] as? String)
        XCTAssertLessThanOrEqual(generate["generated_tokens"] as? Int ?? 99, 4)
        XCTAssertGreaterThan(generate["prompt_tokens"] as? Int ?? 0, 0)
    }

    /// A write that fails part-way (the file-size limit is hit in the middle of the tensors) leaves neither the
    /// output nor a temporary file or folder behind, for a Hugging Face folder and for a GGUF file.
    func testFailureDuringExportLeavesNoOutputBehind() throws {
        for output in ["new/hf", "new/hf/", "model.out.gguf"] {
            let r = try CommandLineTool.run(["convert", "model.gguf", output], in: folder, fileSizeLimitBlocks: 16)
            XCTAssertEqual(r.status, 1, "\(output)\n\(r.stderr)")
            XCTAssertTrue(r.stderr.contains("File too large") || r.stderr.contains("file too large"), r.stderr)
            let left = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            XCTAssertEqual(left, ["eval.txt", "garbage.gguf", "model.gguf", "recipe.yaml", "text.txt"], "\(output): debris left behind")
        }
    }

    func testValidateRefusesAHeterogeneousModelForAHuggingFaceFolderBeforeAnyCompute() throws {
        let recipe = """
            lancet: 1
            model: model.gguf
            calibration: {data: text.txt, samples: 2, context: 32}
            stages:
              - passes:
                  - prune-structured: {sparsity: 0.25}
                    ignore: ["blocks.0.*"]
            output: out/hf

            """
        try Data(recipe.utf8).write(to: URL(fileURLWithPath: folder + "/hetero.yaml"))
        let validate = try lancet("validate", "hetero.yaml")
        XCTAssertEqual(validate.status, 64, validate.stderr)
        XCTAssertTrue(validate.stderr.contains("hetero.yaml:8:9 output: stages[0].passes[0] (prune-structured) may leave blocks of different sizes"),
                      validate.stderr)
        XCTAssertTrue(validate.stderr.contains("write a .gguf file (deci) instead"), validate.stderr)
        let started = Date()
        let run = try lancet("run", "hetero.yaml")
        XCTAssertEqual(run.status, 64, run.stderr)
        XCTAssertFalse(run.stderr.contains("surgery"), "refused before the sweep:\n\(run.stderr)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
        XCTAssertFalse(exists("out"), "no output folder left behind")

        // The same pass with a fixed head/channel split shrinks every block alike: a Hugging Face folder holds it.
        let uniform = recipe.replacingOccurrences(of: "{sparsity: 0.25}", with: "{sparsity: 0.25, attention_share: 0.5}")
            .replacingOccurrences(of: "        ignore: [\"blocks.0.*\"]\n", with: "")
        XCTAssertFalse(uniform.contains("ignore"))
        try Data(uniform.utf8).write(to: URL(fileURLWithPath: folder + "/uniform.yaml"))
        let ok = try lancet("validate", "uniform.yaml")
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }
}
