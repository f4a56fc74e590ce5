import Foundation
import LancetIO
import LancetIR
import LancetTensor

/// Where an interrupted run picks up: the stage and the next block to run, with the reports so far.
struct ResumePoint {
    let stage: Int
    let block: Int
    let reports: [PassReport]
}

/// Per-block checkpoints of a run, each written atomically: after every block, that block's archive and
/// the next block's calibration inputs, then `state.json`; after every stage, the whole model's archive.
/// A resumed run reloads them and continues with the next block, producing the same output bit for bit.
///
/// Every file carries the run's fingerprint (hashes of recipe, model and calibration): `state.json` in its
/// `fingerprint` field, each archive and inputs file in its metadata key `lancet.checkpoint.fingerprint`.
/// Resuming checks each file as it is loaded, so a folder mixing two runs' files is refused, naming the file.
/// The folder is made as a new name (a link planted there is refused, never followed) and removed completely.
final class CheckpointStore {
    let directory: String
    let fingerprint: String

    /// The metadata key of the run fingerprint in every archive and inputs file.
    static let fingerprintKey = "lancet.checkpoint.fingerprint"

    struct State: Codable {
        var fingerprint: String
        var stage: Int
        var block: Int
        var reports: [PassReport]
    }

    /// Opens the checkpoint folder `directory`. When resuming, an existing folder is kept; otherwise an
    /// existing checkpoint is announced on `log` and discarded, and a new folder is made.
    init(directory: String, fingerprint: String, resume: Bool, log: (String) -> Void = { _ in }) throws {
        self.directory = directory
        self.fingerprint = fingerprint
        switch OutputFolder.entry(directory) {
        case .link:
            throw FileWriteError(path: directory, reason: "is a symbolic link; checkpoints go only into a folder Lancet makes itself, never through a link: remove the link")
        case .other:
            throw FileWriteError(path: directory, reason: "exists and is not a checkpoint folder; remove it")
        case .folder where resume:
            return
        case .folder:
            if !((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).isEmpty {
                log("discarding the checkpoint \(directory) of an earlier run (rerun with --resume to continue that run instead)")
            }
            try OutputFolder.removeTree(directory)
        case .none:
            try OutputFolder.create(OutputFolder.parent(of: directory))
        }
        try OutputFolder.makeNew(directory)
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// The point to resume from, or nil when there is no checkpoint. A checkpoint of another recipe, model
    /// or calibration set is refused.
    func resumePoint() throws -> ResumePoint? {
        guard let data = FileManager.default.contents(atPath: path("state.json")) else { return nil }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: data) } catch {
            throw PipelineError.badCheckpoint(path: path("state.json"), reason: "unreadable state (\(error))")
        }
        guard state.fingerprint == fingerprint else {
            throw PipelineError.badCheckpoint(path: path("state.json"), reason: "it belongs to another recipe, model or calibration set; remove it or run without --resume")
        }
        return ResumePoint(stage: state.stage, block: state.block, reports: state.reports)
    }

    /// The model as it was after stage `s` (nil for s < 0 or when absent).
    func stageModel(_ s: Int) throws -> Model? {
        guard s >= 0, FileManager.default.fileExists(atPath: path("stage-\(s).lancet")) else { return nil }
        let (model, file) = try ModelArchive.read(path("stage-\(s).lancet"))
        try checkFingerprint(of: file)
        return model
    }

    /// The calibration inputs of the next block of stage `s`.
    func inputs(stage s: Int) throws -> Tensor? {
        let p = path("inputs-\(s).gguf")
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        let file = try GGUFFile(path: p)
        try checkFingerprint(of: file)
        let t = try file.tensor("inputs")
        return Tensor(shape: t.shape, t.scalars)
    }

    /// Block `index` of stage `s` as it was finished.
    func block(stage s: Int, index: Int) throws -> Block {
        let file = try GGUFFile(path: path("block-\(s)-\(index).lancet"))
        try checkFingerprint(of: file)
        return try ModelArchive.readBlock(file)
    }

    /// Refuses a checkpoint file that another run wrote (or that carries no fingerprint).
    func checkFingerprint(of file: GGUFFile) throws {
        let remedy = "remove \(directory) or run without --resume"
        guard let found = file.string(Self.fingerprintKey) else {
            throw PipelineError.badCheckpoint(path: file.path, reason: "it carries no run fingerprint, so it may belong to another run; \(remedy)")
        }
        guard found == fingerprint else {
            throw PipelineError.badCheckpoint(path: file.path, reason: "it was written by another run (another recipe, model or calibration set) than the one being resumed: the checkpoint mixes two runs; \(remedy)")
        }
    }

    private var fingerprintMetadata: [(String, GGUFValue)] { [(Self.fingerprintKey, .string(fingerprint))] }

    func finishBlock(stage s: Int, index: Int, block: Block, inputs: Tensor, reports: [PassReport]) throws {
        try ModelArchive.writeBlock(block, to: path("block-\(s)-\(index).lancet"), extra: fingerprintMetadata)
        var writer = GGUFWriter(metadata: [("general.architecture", .string("lancet-activations"))] + fingerprintMetadata)
        try writer.add(name: "inputs", tensor: inputs)
        try writer.write(to: path("inputs-\(s).gguf"))
        try writeState(State(fingerprint: fingerprint, stage: s, block: index + 1, reports: reports))
    }

    func finishStage(_ s: Int, model: Model, reports: [PassReport]) throws {
        try ModelArchive.write(model, to: path("stage-\(s).lancet"), extra: fingerprintMetadata)
        try writeState(State(fingerprint: fingerprint, stage: s + 1, block: 0, reports: reports))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix("block-\(s)-") || name == "inputs-\(s).gguf" || (name.hasPrefix("stage-") && name != "stage-\(s).lancet") {
            unlink(path(name))
        }
    }

    /// Removes the folder and everything in it (links inside removed, not followed).
    func removeAll() throws { try OutputFolder.removeTree(directory) }

    private func writeState(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(state)
        try AtomicFile.write(to: path("state.json")) { try $0.write(Array(data)) }
    }
}
