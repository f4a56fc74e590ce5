import Foundation
import LancetIR
import LancetRuntime
import LancetTensor

/// Prefill time of a model's block shapes on the machine that measured it: the budget a latency-bounded search
/// meets is what the user will see there. A block's time is its attention sub-layer's (measured for every choice
/// of KV groups and heads per group) plus its MLP's (measured on a grid of FFN widths, linear in between); the
/// model's is the sum over its blocks plus a fixed part (embedding, final norm and output head: the model with no
/// blocks, measured). The dense model's measured prefill is kept beside (`dense`), to set against its prediction.
/// Every time is the best of `repetitions` rounds over every shape, each run on `tokens` tokens of one sequence, as
/// `lancet bench` measures prefill.
public struct LatencyTable: Codable, Sendable, Equatable {
    /// Which machine measured it (host, CPU model, cores).
    public var machine: String
    /// The block shape and model it applies to (`LatencyTable.signature`).
    public var signature: String
    /// Prefill tokens.
    public var tokens: Int
    /// Seconds of the attention sub-layer by "groups×headsPerGroup" (0×0: none).
    public var attention: [String: Double]
    /// FFN widths of the MLP grid, ascending, and their seconds.
    public var widths: [Int]
    public var mlp: [Double]
    /// Seconds of the model outside its blocks (embedding, final norm, head on the last row).
    public var fixed: Double
    /// The dense model's measured prefill seconds.
    public var dense: Double

    /// The table's version: a cached table of another version is measured again.
    public static let version = 3

    /// The identity of `model`'s shapes a table applies to.
    public static func signature(of model: Model) -> String {
        let b = model.blocks.first
        let a = b.flatMap { LlamaBlock.attentionSizes(of: $0) }
        return "v\(version)-blocks\(model.blocks.count)-hidden\(model.config.hiddenSize)-heads\(a?.heads ?? 0)-kv\(a?.kvHeads ?? 0)-d\(a?.headDimensions ?? 0)"
            + "-ffn\(b.flatMap { LlamaBlock.ffnWidth(of: $0) } ?? 0)-vocab\(model.config.vocabularySize)"
    }

    /// The machine's identity: host name, CPU model and core count.
    public static var machineIdentity: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown cpu"
        return "\(ProcessInfo.processInfo.hostName) / \(cpu) / \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }

    /// The predicted seconds of one block with `choice`.
    public func block(_ choice: BlockChoice) -> Double {
        (attention[Self.key(choice)] ?? .nan) + interpolatedMLP(choice.channels)
    }

    /// The predicted prefill seconds of `architecture`.
    public func predict(_ architecture: Architecture) -> Double {
        fixed + architecture.reduce(0) { $0 + block($1) }
    }

    static func key(_ c: BlockChoice) -> String { "\(c.groups)×\(c.headsPerGroup)" }

    func interpolatedMLP(_ width: Int) -> Double {
        guard let upper = widths.firstIndex(where: { $0 >= width }) else { return mlp.last ?? .nan }
        if widths[upper] == width || upper == 0 { return mlp[upper] }
        let (w0, w1) = (Double(widths[upper - 1]), Double(widths[upper]))
        let t = (Double(width) - w0) / (w1 - w0)
        return mlp[upper - 1] + t * (mlp[upper] - mlp[upper - 1])
    }

    /// Measures the table for `model` (every block of the same dense shape as block 0): each attention choice with the
    /// MLP removed, each grid width (`gridStep` apart, and the dense width) with the attention removed, and the dense
    /// model, all on `tokens` tokens, best of `repetitions` rounds over every shape. `progress(round, rounds)`.
    public static func measure(_ model: Model, space: SearchSpace.BlockSpace, tokens: Int, gridStep: Int, repetitions: Int = 3,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> LatencyTable {
        guard let block = model.blocks.first else { throw SearchError("the latency table needs a model with blocks") }
        guard tokens >= 1 && tokens <= model.config.contextLength else { throw SearchError("latency tokens must be in 1...\(model.config.contextLength), got \(tokens)") }
        let ranking = UnitRanking(inOrderOf: space)
        var g = SeededGenerator(seed: 7)
        let x = Tensor(shape: [tokens, space.hidden], (0..<(tokens * space.hidden)).map { _ in g.nextNormal() })
        let layout = ExecutionContext(batch: 1, length: tokens)
        func time(_ run: () throws -> Void) rethrows -> Double {
            let start = Date()
            try run()
            return Date().timeIntervalSince(start)
        }
        var attentionChoices: [BlockChoice] = []
        for groups in 1...space.groups { for q in 1...space.headsPerGroup { attentionChoices.append(BlockChoice(groups: groups, headsPerGroup: q, channels: 0)) } }
        var widths = Array(stride(from: gridStep, to: space.channels, by: gridStep))
        widths.append(space.channels)
        let blocks = try (attentionChoices + widths.map { BlockChoice(groups: 0, headsPerGroup: 0, channels: $0) }).map {
            try ranking.sliced(block, $0, dense: space.dense)
        }
        let runner = ModelRunner(model: model)
        var outside = model
        outside.blocks = []
        let head = ModelRunner(model: outside)
        let ids = (0..<tokens).map { Int32(($0 * 7 + 1) % model.config.vocabularySize) }
        // Rounds over every shape in turn, the best of each kept: a drift in the machine's speed (another process, a
        // frequency change) touches every shape alike instead of whichever was being measured.
        var best = [Double](repeating: .infinity, count: blocks.count + 2)
        let rounds = max(repetitions, 1)
        for round in 0..<rounds {
            for (i, cut) in blocks.enumerated() {
                best[i] = min(best[i], try time { _ = try BlockExecutor.forward(cut, index: 0, input: x, context: layout) })
            }
            best[blocks.count] = min(best[blocks.count], try time { _ = try runner.logits(ids, context: layout, rows: [tokens - 1]) })
            best[blocks.count + 1] = min(best[blocks.count + 1], try time { _ = try head.logits(ids, context: layout, rows: [tokens - 1]) })
            progress(round + 1, rounds)
        }
        // No attention is no block at all: zero.
        var attention: [String: Double] = [key(BlockChoice(groups: 0, headsPerGroup: 0, channels: 0)): 0]
        for (c, s) in zip(attentionChoices, best) { attention[key(c)] = s }
        let mlp = Array(best[attentionChoices.count..<blocks.count])
        let dense = best[blocks.count]
        return LatencyTable(machine: machineIdentity, signature: signature(of: model), tokens: tokens, attention: attention,
                            widths: [0] + widths, mlp: [0] + mlp, fixed: best[blocks.count + 1], dense: dense)
    }

    /// The file a table for `model` at `tokens` tokens on this machine is cached in: under `$LANCET_CACHE` or
    /// `~/.cache/lancet`, `latency/<hash of machine and signature>-<tokens>.json`.
    public static func cacheURL(for model: Model, tokens: Int) -> URL {
        let root = ProcessInfo.processInfo.environment["LANCET_CACHE"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/lancet")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (machineIdentity + "|" + signature(of: model)).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return root.appendingPathComponent("latency").appendingPathComponent(String(format: "%016llx-%d.json", hash, tokens))
    }

    /// The cached table for `model` at `tokens` tokens on this machine, or nil when none is cached (or it is unreadable,
    /// of another machine, signature or version).
    public static func cached(for model: Model, tokens: Int) -> LatencyTable? {
        guard let data = try? Data(contentsOf: cacheURL(for: model, tokens: tokens)),
              let table = try? JSONDecoder().decode(LatencyTable.self, from: data),
              table.machine == machineIdentity, table.signature == signature(of: model), table.tokens == tokens else { return nil }
        return table
    }

    /// Writes the table to its cache file (atomically).
    public func save(for model: Model) throws -> URL {
        let url = Self.cacheURL(for: model, tokens: tokens)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
        return url
    }
}
