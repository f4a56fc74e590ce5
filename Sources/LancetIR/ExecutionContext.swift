import Foundation
import LancetTensor

/// How the rows of the values in one forward call are laid out, and the state that persists across
/// calls (the KV cache for decoding).
///
/// A call processes `batch` sequences of `length` new tokens each, stacked row-wise: row `b·length + t`
/// is token `t` of sequence `b`, at absolute position `startPosition + t`. With a KV cache, attention
/// sees the cached keys and values of earlier calls before the new ones.
public final class ExecutionContext: @unchecked Sendable {
    /// Number of sequences in the call.
    public let batch: Int
    /// New tokens per sequence in the call.
    public let length: Int
    /// Absolute position of the first new token (the number of tokens already cached).
    public let startPosition: Int
    /// Keys and values of earlier calls, by attention node; nil when not decoding.
    public let cache: KVCache?
    /// The block being executed, set by the executor so that stateful ops can key their state.
    public var blockIndex: Int = 0
    /// The node being executed (its name), set by the executor.
    public var nodeName: String = ""
    /// Optional per-token routing or channel selections produced by input-dependent ops, by node name.
    public var routing: [String: [Int32]] = [:]
    /// When set, the executor adds each op kind's wall time (seconds) here, for `lancet bench --profile`.
    public var opSeconds: [String: Double]?
    /// When set, the executor adds each region's wall time (seconds) here: a node's region is its name up to the first
    /// `.` (`mlp.gate`, `mlp.moe` → `mlp`, the feed-forward; `attn.q` → `attn`), for `lancet bench --profile`.
    public var regionSeconds: [String: Double]?
    /// 16-bit copies of the model's matrices to multiply by instead of the Float weights (nil: Float).
    public var halfWeights: HalfWeights?

    /// Creates a context for `batch` sequences of `length` tokens starting at `startPosition`.
    public init(batch: Int, length: Int, startPosition: Int = 0, cache: KVCache? = nil) {
        precondition(batch >= 1 && length >= 1 && startPosition >= 0, "ExecutionContext: batch \(batch), length \(length), start \(startPosition)")
        precondition(cache == nil || batch == 1, "ExecutionContext: a KV cache serves one sequence")
        self.batch = batch
        self.length = length
        self.startPosition = startPosition
        self.cache = cache
    }

    /// Rows of every value in this call.
    public var tokens: Int { batch * length }

    /// The per-sequence state of ops (kept with the KV cache; nil without one, when every call is a whole sequence).
    public var sequenceState: SequenceState? { cache?.state }

    /// Absolute positions of the rows of one sequence.
    public var positions: [Int32] { (0..<length).map { Int32(startPosition + $0) } }
}

/// Cached keys and values of one sequence, by block and attention node, grown as tokens are decoded.
public final class KVCache: @unchecked Sendable {
    /// The keys and values of one attention node: `[capacity, kvWidth]` each, `count` rows filled.
    public final class Entry {
        /// Cached keys (after RoPE), row per position.
        public var keys: Tensor
        /// Cached values, row per position.
        public var values: Tensor
        /// Filled rows.
        public var count = 0
        init(width: Int, capacity: Int) {
            keys = Tensor(zeros: [capacity, width])
            values = Tensor(zeros: [capacity, width])
        }
    }

    /// The most tokens the cache holds.
    public let capacity: Int
    private var entries: [String: Entry] = [:]

    /// A cache for up to `capacity` tokens.
    public init(capacity: Int) { self.capacity = capacity }

    /// The entry of `node` in `block`, created empty with the given key/value width on first use.
    public func entry(block: Int, node: String, width: Int) -> Entry {
        let key = "\(block)/\(node)"
        if let e = entries[key] { return e }
        let e = Entry(width: width, capacity: capacity)
        entries[key] = e
        return e
    }

    /// State that ops other than attention keep for this sequence (e.g. a choice made at prefill that every
    /// decode step reuses), beside the cached keys and values.
    public let state = SequenceState()

    /// Drops every cached token and every op's state.
    public func reset() {
        entries.removeAll()
        state.reset()
    }
}

/// Per-sequence values of ops, by block and node, kept for as long as the sequence's `KVCache`: an op decides
/// something at prefill (`context.startPosition == 0`) and the decode steps that follow read it back.
public final class SequenceState: @unchecked Sendable {
    private var values: [String: Any] = [:]
    private let lock = NSLock()

    /// The value `node` of `block` stored, if any.
    public func value(block: Int, node: String) -> Any? {
        lock.lock()
        defer { lock.unlock() }
        return values["\(block)/\(node)"]
    }

    /// Stores `value` for `node` of `block`, replacing an earlier one.
    public func set(_ value: Any, block: Int, node: String) {
        lock.lock()
        defer { lock.unlock() }
        values["\(block)/\(node)"] = value
    }

    /// Forgets every value.
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        values.removeAll()
    }
}
