import Foundation
import Lancet
import XCTest

/// Checkpoints belong to one run and one folder: files of another run are refused on resume, an earlier
/// checkpoint is discarded out loud, and links never send a checkpoint write elsewhere.
final class CheckpointSafetyTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-checkpoint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    static let model: Model = {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = 4
        return TinyLlama.make(sizes, seed: 7)
    }()

    /// Magnitude pruning at `sparsity` with a least-squares fit (so the run streams calibration inputs and
    /// checkpoints every block).
    static func recipe(sparsity: String) -> Recipe { PipelineTests.recipe("magnitude", options: [("sparsity", sparsity)], fit: .lstsq) }

    /// Runs `recipe` with checkpoints in `directory` under `fingerprint`; stops after `stopAfter` blocks.
    @discardableResult
    func run(_ recipe: Recipe, directory: String, fingerprint: String, resume: Bool = false, stopAfter: Int? = nil,
             log: Lines = Lines(), blockFinished: @escaping @Sendable (Int) -> Void = { _ in }) throws -> Model {
        var options = RunOptions()
        options.checkpointDirectory = directory
        options.fingerprint = fingerprint
        options.resume = resume
        options.log = { log.append($0) }
        let finished = Counter()
        options.blockFinished = { i, _, _ in
            finished.increment()
            blockFinished(i)
        }
        if let stopAfter { options.stopRequested = { finished.value >= stopAfter } }
        var model = Self.model
        _ = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry())
            .run(on: &model, calibration: PipelineTests.calibration(model: Self.model), options: options)
        return model
    }

    /// Runs until interrupted after `blocks` blocks.
    func interrupt(_ recipe: Recipe, directory: String, fingerprint: String, after blocks: Int, log: Lines = Lines()) {
        XCTAssertThrowsError(try run(recipe, directory: directory, fingerprint: fingerprint, stopAfter: blocks, log: log)) { e in
            XCTAssertTrue("\(e)".contains("interrupted"), "\(e)")
        }
    }

    /// Two runs' interrupted checkpoints (wanda-like 0.5 and 0.3), with `file` of the 0.5 run copied into
    /// the 0.3 run's folder, as two runs sharing one folder left it.
    func mixedCheckpoint(taking file: String) throws -> String {
        let a = folder + "/a.checkpoint", b = folder + "/b.checkpoint"
        interrupt(Self.recipe(sparsity: "0.5"), directory: a, fingerprint: "run-0.5", after: 2)
        interrupt(Self.recipe(sparsity: "0.3"), directory: b, fingerprint: "run-0.3", after: 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: a + "/" + file), file)
        try FileManager.default.removeItem(atPath: b + "/" + file)
        try FileManager.default.copyItem(atPath: a + "/" + file, toPath: b + "/" + file)
        return b
    }

    func testResumeRefusesABlockArchiveOfAnotherRun() throws {
        let b = try mixedCheckpoint(taking: "block-0-0.lancet")
        XCTAssertThrowsError(try run(Self.recipe(sparsity: "0.3"), directory: b, fingerprint: "run-0.3", resume: true)) { e in
            XCTAssertTrue("\(e)".contains("\(b)/block-0-0.lancet: cannot resume: it was written by another run"), "\(e)")
        }
    }

    func testResumeRefusesCalibrationInputsOfAnotherRun() throws {
        let b = try mixedCheckpoint(taking: "inputs-0.gguf")
        XCTAssertThrowsError(try run(Self.recipe(sparsity: "0.3"), directory: b, fingerprint: "run-0.3", resume: true)) { e in
            XCTAssertTrue("\(e)".contains("\(b)/inputs-0.gguf: cannot resume: it was written by another run"), "\(e)")
        }
    }

    func testResumeRefusesAnArchiveWithoutFingerprint() throws {
        let b = folder + "/b.checkpoint"
        interrupt(Self.recipe(sparsity: "0.3"), directory: b, fingerprint: "run-0.3", after: 2)
        let archive = b + "/block-0-1.lancet"
        try ModelArchive.writeBlock(try ModelArchive.readBlock(archive), to: archive)
        XCTAssertThrowsError(try run(Self.recipe(sparsity: "0.3"), directory: b, fingerprint: "run-0.3", resume: true)) { e in
            XCTAssertTrue("\(e)".contains("\(archive): cannot resume: it carries no run fingerprint"), "\(e)")
        }
    }

    func testARunWithoutResumeSaysItDiscardsAnEarlierCheckpointAndResumesOnlyItsOwnBlocks() throws {
        let dir = folder + "/out.checkpoint"
        interrupt(Self.recipe(sparsity: "0.5"), directory: dir, fingerprint: "run-0.5", after: 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/block-0-2.lancet"))
        let log = Lines()
        interrupt(Self.recipe(sparsity: "0.3"), directory: dir, fingerprint: "run-0.3", after: 1, log: log)
        XCTAssertTrue(log.text.contains("discarding the checkpoint \(dir) of an earlier run"), log.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/block-0-2.lancet"), "the earlier run's blocks are gone")

        let resumed = try run(Self.recipe(sparsity: "0.3"), directory: dir, fingerprint: "run-0.3", resume: true)
        let reference = try run(Self.recipe(sparsity: "0.3"), directory: folder + "/reference.checkpoint", fingerprint: "ref")
        for (i, (x, y)) in zip(reference.blocks, resumed.blocks).enumerated() {
            for name in x.parameters.keys { XCTAssertEqual(x.parameters[name], y.parameters[name], "block \(i) \(name)") }
            for (name, mask) in y.masks { XCTAssertEqual(mask.sparsity, 0.3, accuracy: 0.01, "block \(i) \(name)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "a finished run removes its checkpoint")
    }

    func testALinkAtTheCheckpointFolderIsRefusedAndItsTargetStaysUntouched() throws {
        let target = folder + "/elsewhere", link = folder + "/out.gguf.checkpoint"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: target + "/precious.txt"))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        for resume in [false, true] {
            XCTAssertThrowsError(try run(Self.recipe(sparsity: "0.5"), directory: link, fingerprint: "f", resume: resume)) { e in
                XCTAssertTrue("\(e)".contains("\(link): is a symbolic link"), "\(e)")
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target), ["precious.txt"], "resume: \(resume)")
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), target)
        }
    }

    func testTheCheckpointFolderIsRemovedCompletelyWithoutFollowingLinksInside() throws {
        let dir = folder + "/out.checkpoint", outside = folder + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: outside + "/precious.txt"))
        let planted = Counter()
        try run(Self.recipe(sparsity: "0.5"), directory: dir, fingerprint: "f") { _ in
            guard planted.value == 0 else { return }
            planted.increment()
            // Mid-run, someone plants a link to another folder and a nested folder inside the checkpoint.
            symlink(outside, dir + "/link")
            mkdir(dir + "/nested", 0o755)
            _ = FileManager.default.createFile(atPath: dir + "/nested/file", contents: Data("x".utf8))
            symlink(outside + "/precious.txt", dir + "/nested/file-link")
        }
        XCTAssertEqual(planted.value, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir))
        XCTAssertEqual(try String(contentsOfFile: outside + "/precious.txt", encoding: .utf8), "keep")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), ["precious.txt"])
    }

    func testAFileAtTheCheckpointFolderNameIsRefused() throws {
        let dir = folder + "/out.checkpoint"
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: dir))
        XCTAssertThrowsError(try run(Self.recipe(sparsity: "0.5"), directory: dir, fingerprint: "f")) { e in
            XCTAssertTrue("\(e)".contains("\(dir): exists and is not a checkpoint folder"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: dir, encoding: .utf8), "not a folder")
    }
}
