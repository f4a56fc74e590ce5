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
final class CheckpointStore {
    let directory: String
    let fingerprint: String

    struct State: Codable {
        var fingerprint: String
        var stage: Int
        var block: Int
        var reports: [PassReport]
    }

    init(directory: String, fingerprint: String) throws {
        self.directory = directory
        self.fingerprint = fingerprint
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
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
            throw PipelineError.badCheckpoint(path: directory, reason: "it belongs to another recipe, model or calibration set; remove it or run without --resume")
        }
        return ResumePoint(stage: state.stage, block: state.block, reports: state.reports)
    }

    /// The model as it was after stage `s` (nil for s < 0 or when absent).
    func stageModel(_ s: Int) throws -> Model? {
        guard s >= 0, FileManager.default.fileExists(atPath: path("stage-\(s).lancet")) else { return nil }
        return try ModelArchive.read(path("stage-\(s).lancet")).model
    }

    /// The calibration inputs of the next block of stage `s`.
    func inputs(stage s: Int) throws -> Tensor? {
        let p = path("inputs-\(s).gguf")
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        let t = try GGUFFile(path: p).tensor("inputs")
        return Tensor(shape: t.shape, t.scalars)
    }

    /// Block `index` of stage `s` as it was finished.
    func block(stage s: Int, index: Int) throws -> Block {
        try ModelArchive.readBlock(path("block-\(s)-\(index).lancet"))
    }

    func finishBlock(stage s: Int, index: Int, block: Block, inputs: Tensor, reports: [PassReport]) throws {
        try ModelArchive.writeBlock(block, to: path("block-\(s)-\(index).lancet"))
        var writer = GGUFWriter(metadata: [("general.architecture", .string("lancet-activations"))])
        try writer.add(name: "inputs", tensor: inputs)
        try writer.write(to: path("inputs-\(s).gguf"))
        try writeState(State(fingerprint: fingerprint, stage: s, block: index + 1, reports: reports))
    }

    func finishStage(_ s: Int, model: Model, reports: [PassReport]) throws {
        try ModelArchive.write(model, to: path("stage-\(s).lancet"))
        try writeState(State(fingerprint: fingerprint, stage: s + 1, block: 0, reports: reports))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix("block-\(s)-") || name == "inputs-\(s).gguf" || (name.hasPrefix("stage-") && name != "stage-\(s).lancet") {
            try? FileManager.default.removeItem(atPath: path(name))
        }
    }

    func removeAll() throws { try FileManager.default.removeItem(atPath: directory) }

    private func writeState(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(state)
        try AtomicFile.write(to: path("state.json")) { try $0.write(Array(data)) }
    }
}
