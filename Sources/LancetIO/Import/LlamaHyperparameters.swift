/// The sizes and constants a Llama-family model file states, checked by one set of rules that the GGUF
/// importer and the Hugging Face `config.json` both apply, so that neither loader accepts what the other
/// refuses.
///
/// Checked by `problem(names:)`: block count, hidden size, vocabulary and context positive, and all
/// but the block count below the bounds below (the block count is bounded by `blockCountProblem`, against
/// the blocks whose tensors the file holds, which each loader checks before sizing anything by it); per-block head and FFN counts non-negative and bounded, at least one block with
/// attention, KV heads positive and dividing the heads wherever a block has heads; without an explicit
/// head dimension, the heads divide the hidden size; the head dimension (and any rotary dimension count)
/// positive, even and bounded; RMS ε and RoPE base positive and finite. Each loader names the fields in
/// its own vocabulary (`llama.block_count`, `num_hidden_layers`) through `names`.
public struct LlamaHyperparameters: Sendable, Equatable {
    /// A checked quantity, for naming it in the format's own terms.
    public enum Field: Sendable, CaseIterable {
        case blockCount, hiddenSize, vocabularySize, contextLength, heads, kvHeads, headDimension, rotaryDimensions
        case ffnWidth, normEpsilon, ropeTheta
    }

    /// Number of decoder blocks.
    public var blockCount: Int
    /// Residual width.
    public var hiddenSize: Int
    /// Rows of the token embedding.
    public var vocabularySize: Int
    /// Training context length.
    public var contextLength: Int
    /// Query heads, one value per block (0: the block has no attention).
    public var heads: [Int]
    /// Key-value heads, one value per block.
    public var kvHeads: [Int]
    /// The head dimension when the file states it; nil means hidden size / heads.
    public var headDimension: Int?
    /// Dimensions RoPE rotates, when the file states it; nil means the whole head.
    public var rotaryDimensions: Int?
    /// FFN width, one value per block (0: the block has no MLP).
    public var ffnWidths: [Int]
    /// RMS-norm ε.
    public var normEpsilon: Double
    /// RoPE base frequency θ.
    public var ropeTheta: Double

    /// Most decoder blocks a file may state (the largest released models have a few hundred).
    public static let maximumBlocks = 1 << 16
    /// Largest hidden size, FFN width or head dimension accepted.
    public static let maximumWidth = 1 << 20
    /// Most heads a block may state.
    public static let maximumHeads = 1 << 14
    /// Largest vocabulary accepted.
    public static let maximumVocabulary = 1 << 24
    /// Longest context length accepted.
    public static let maximumContext = 1 << 30

    /// Hyperparameters as a file states them.
    public init(blockCount: Int, hiddenSize: Int, vocabularySize: Int, contextLength: Int, heads: [Int], kvHeads: [Int],
                headDimension: Int?, rotaryDimensions: Int?, ffnWidths: [Int], normEpsilon: Double, ropeTheta: Double) {
        self.blockCount = blockCount
        self.hiddenSize = hiddenSize
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.rotaryDimensions = rotaryDimensions
        self.ffnWidths = ffnWidths
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
    }

    /// The head dimension in effect: the stated one, or hidden size / the largest head count.
    public var effectiveHeadDimension: Int {
        headDimension ?? hiddenSize / max(heads.max() ?? 1, 1)
    }

    /// Checks a stated block count against the blocks whose tensors the file holds, before anything is
    /// sized by it: the reason when the count is out of bounds or larger than `blocksWithTensors`.
    /// `tensorPrefix` shows how the format names a block's tensors (`blk.`, `model.layers.`).
    public static func blockCountProblem(_ stated: Int, blocksWithTensors: Int, tensorPrefix: String) -> String? {
        guard stated > 0 else { return "must be positive, got \(stated)" }
        guard stated <= maximumBlocks else { return "is \(stated), more than the \(maximumBlocks) blocks Lancet accepts (the file holds tensors for \(blocksWithTensors))" }
        guard stated <= blocksWithTensors else {
            let which = blocksWithTensors == 0 ? "no block's tensors" : "tensors for only \(blocksWithTensors) blocks (\(tensorPrefix)N.*)"
            return "is \(stated), but the file holds \(which)"
        }
        return nil
    }

    /// The number of distinct block indices among `names` that start with `prefix` followed by digits and a dot.
    /// Counting distinct indices (not the largest one) keeps the result bounded by the number of tensors.
    public static func blocksWithTensors(_ names: some Sequence<String>, prefix: String) -> Int {
        var seen = Set<Int>()
        for name in names where name.hasPrefix(prefix) {
            let rest = name.utf8.dropFirst(prefix.utf8.count)
            guard let dot = rest.firstIndex(of: UInt8(ascii: ".")), dot > rest.startIndex,
                  let i = Int(Substring(rest[rest.startIndex..<dot])) else { continue }
            seen.insert(i)
        }
        return seen.count
    }

    /// The first problem, as (field, reason), or nil when the hyperparameters describe a model Lancet can build.
    /// `names` gives each field's name in the file's vocabulary, for reasons that refer to another field.
    public func problem(names: (Field) -> String) -> (field: Field, reason: String)? {
        // The block count's upper bound is checked against the tensors present, by `blockCountProblem`.
        let scalars: [(Field, Int, Int)] = [
            (.blockCount, blockCount, Int.max), (.hiddenSize, hiddenSize, Self.maximumWidth),
            (.vocabularySize, vocabularySize, Self.maximumVocabulary), (.contextLength, contextLength, Self.maximumContext),
        ]
        for (field, value, bound) in scalars {
            guard value > 0 else { return (field, "must be positive, got \(value)") }
            guard value <= bound else { return (field, "is \(value), more than the \(bound) Lancet accepts") }
        }
        let perBlock: [(Field, [Int], Int)] = [(.heads, heads, Self.maximumHeads), (.kvHeads, kvHeads, Self.maximumHeads), (.ffnWidth, ffnWidths, Self.maximumWidth)]
        for (field, values, bound) in perBlock {
            guard values.count == 1 || values.count == blockCount else {
                return (field, "has \(values.count) values, expected one per block (\(blockCount))")
            }
            if let i = values.firstIndex(where: { !(0...bound).contains($0) }) {
                return (field, "\(Self.block(i, values))must be between 0 and \(bound), got \(values[i])")
            }
        }
        let maxHeads = heads.max() ?? 0
        guard maxHeads > 0 else { return (.heads, "no block has attention heads") }
        // One value may stand for every block: iterate over the values given, never over the block count.
        for i in 0..<max(heads.count, kvHeads.count) {
            let (h, kv) = (value(heads, i), value(kvHeads, i))
            guard h > 0 else { continue }
            guard kv > 0, h % kv == 0 else {
                return (.kvHeads, "\(Self.block(i, kvHeads))\(kv) key-value heads do not divide \(h) attention heads")
            }
        }
        if let d = headDimension {
            guard d > 0, d <= Self.maximumWidth else { return (.headDimension, "must be between 1 and \(Self.maximumWidth), got \(d)") }
            guard d % 2 == 0 else { return (.headDimension, "must be even (RoPE rotates pairs), got \(d)") }
        } else {
            guard hiddenSize % maxHeads == 0 else {
                return (.heads, "\(maxHeads) heads do not divide \(names(.hiddenSize)) \(hiddenSize), and \(names(.headDimension)) is not given")
            }
            guard effectiveHeadDimension % 2 == 0 else {
                return (.heads, "\(names(.hiddenSize)) / \(names(.heads)) = \(effectiveHeadDimension) is odd; RoPE needs an even head dimension")
            }
        }
        if let r = rotaryDimensions {
            guard r > 0, r % 2 == 0, r <= effectiveHeadDimension else {
                return (.rotaryDimensions, "must be a positive even number no larger than the head dimension \(effectiveHeadDimension), got \(r)")
            }
        }
        guard normEpsilon > 0, normEpsilon.isFinite else { return (.normEpsilon, "must be a positive number, got \(normEpsilon)") }
        guard ropeTheta > 0, ropeTheta.isFinite else { return (.ropeTheta, "must be a positive number, got \(ropeTheta)") }
        return nil
    }

    private func value(_ values: [Int], _ i: Int) -> Int { values.count == 1 ? values[0] : values[i] }

    /// "block 3: " for per-block values, "" when one value applies to all.
    private static func block(_ i: Int, _ values: [Int]) -> String { values.count == 1 ? "" : "block \(i): " }
}
