import Foundation
import LancetTensor

/// The K-FAC factors of a whole model held on disk, so that memory holds one block's at a time: the backward adds
/// each batch's Gram sums of a block to that block's file (read, add, write back), and a pass reads a block's
/// factors when it prunes that block. One file per block in a private temporary folder, removed with the store.
///
/// Cost: per backward batch, each block's factor sums are read and written once (for SmolLM2-135M about 36 MB
/// per block); for one batch of all curvature windows, each block's file is written once.
public final class KroneckerFactorStore {
    /// A block's linears: node name, the value it reads (A) and the value it writes (G).
    public struct Linear: Sendable {
        /// The node.
        public var node: String
        /// Its input value.
        public var input: String
        /// Its output value.
        public var output: String
    }

    /// The linears of every block.
    public let linears: [[Linear]]
    /// The tokens N the gradient factors G average over.
    public let tokens: Int
    /// The tokens the input factors A average over (`tokens` unless A came from other windows than G).
    public let inputTokens: Int
    let folder: URL
    /// Names and shapes of every block file's tensors, in file order.
    var layout: [Int: [(name: String, shape: [Int])]] = [:]

    /// An empty store for `linears` (per block), G over `tokens` tokens and A over `inputTokens` (default: the same).
    init(linears: [[Linear]], tokens: Int, inputTokens: Int? = nil) throws {
        self.linears = linears
        self.tokens = tokens
        self.inputTokens = inputTokens ?? tokens
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-kfac-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func file(_ block: Int) -> URL { folder.appendingPathComponent("block-\(block).f32") }

    /// Adds `sums` (Gram sums by name: `A:<value>`, `G:<value>`) to block `block`'s.
    func add(block: Int, sums: [String: Tensor]) throws {
        var total = sums
        if layout[block] != nil {
            for (name, t) in try read(block) {
                if total[name] == nil { total[name] = t } else { total[name]!.add(t) }
            }
        }
        let order = total.keys.sorted()
        layout[block] = order.map { ($0, total[$0]!.shape) }
        var data = Data()
        for name in order { total[name]!.withUnsafeBufferPointer { data.append(Data(buffer: $0)) } }
        try data.write(to: file(block))
    }

    /// Block `block`'s Gram sums by name.
    func read(_ block: Int) throws -> [String: Tensor] {
        guard let entries = layout[block] else { return [:] }
        let data = try Data(contentsOf: file(block))
        var result: [String: Tensor] = [:], offset = 0
        for (name, shape) in entries {
            let count = shape.reduce(1, *)
            result[name] = data.withUnsafeBytes { raw in
                Tensor(shape: shape, initializingWith: { out in
                    _ = memcpy(out.baseAddress!, raw.baseAddress! + offset * MemoryLayout<Float>.stride, count * MemoryLayout<Float>.stride)
                })
            }
            offset += count
        }
        return result
    }

    /// The factors of block `block`'s linears by node name (none for a block without targeted linears).
    public func factors(block: Int) throws -> [String: KroneckerFactors] {
        let sums = try read(block)
        var result: [String: KroneckerFactors] = [:]
        for linear in linears[block] {
            guard let a = sums["A:" + linear.input], let g = sums["G:" + linear.output] else { continue }
            result[linear.node] = KroneckerFactors(a: KroneckerFactors.scaled(a, 1 / Double(inputTokens)), g: KroneckerFactors.scaled(g, 1 / Double(tokens)),
                                                   tokens: tokens)
        }
        return result
    }
}
