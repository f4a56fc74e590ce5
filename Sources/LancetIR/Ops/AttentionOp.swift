import Dispatch
import Foundation
import LancetTensor

/// Causal grouped-query attention: `softmax(q·kᵀ·scale)·v` per head, query head `h` reading KV head
/// `h / (heads / kvHeads)`.
///
/// Inputs are q `[tokens, heads·d]`, k and v `[tokens, kvHeads·d]` (after RoPE). Several queries (prefill,
/// evaluation, calibration) run `attendQueryTile` on tiles of `queryTileRows` queries of one KV group, each
/// (sequence, KV head)'s keys and values packed once per call; one query (decoding) runs `attendOneQuery`.
/// With a KV cache in the context, new keys and values are appended and queries attend to the whole
/// cache. `window`, when set, limits each query to the most recent `window` keys (sliding window).
///
/// NaN propagates: a NaN score makes its query's output NaN (never the zeros of a masked row).
/// Masked weights are exact zeros multiplied into the values of a whole row block (`attentionRowBlock`
/// queries), so a NaN value reaches every query of its row block, earlier ones included.
public struct AttentionOp: Op {
    public static let kind = "attention"
    /// Query heads.
    public var heads: Int
    /// Key/value heads; must divide `heads`.
    public var kvHeads: Int
    /// Size of each head.
    public var headDimensions: Int
    /// Score scale (1/√d by default).
    public var scale: Float
    /// Sliding-window length, or nil for full causal attention.
    public var window: Int?

    /// Query rows per tile of the backward pass (its score tiles, recomputed, are `tileRows` × keys per query head).
    public static let tileRows = 256

    /// Creates the op.
    public init(heads: Int, kvHeads: Int, headDimensions: Int, scale: Float? = nil, window: Int? = nil) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDimensions = headDimensions
        self.scale = scale ?? 1 / Float(headDimensions).squareRoot()
        self.window = window
    }

    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] {
        var a: [String: OpAttribute] = ["heads": .int(heads), "kv_heads": .int(kvHeads), "head_dim": .int(headDimensions), "scale": .double(Double(scale))]
        if let window { a["window"] = .int(window) }
        return a
    }

    public init(attributes a: [String: OpAttribute]) throws {
        heads = try a.int("heads")
        kvHeads = try a.int("kv_heads")
        headDimensions = try a.int("head_dim")
        scale = Float(try a.double("scale"))
        window = a["window"]?.int
    }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 3 else { throw OpShapeError("attention takes q, k, v, got \(inputs.count) inputs") }
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw OpShapeError("kv_heads \(kvHeads) must divide heads \(heads)")
        }
        guard inputs[0] == heads * headDimensions else { throw OpShapeError("q has \(inputs[0]) features, expected \(heads) × \(headDimensions)") }
        guard inputs[1] == kvHeads * headDimensions, inputs[2] == kvHeads * headDimensions else {
            throw OpShapeError("k and v have \(inputs[1]) and \(inputs[2]) features, expected \(kvHeads) × \(headDimensions)")
        }
        return [inputs[0]]
    }

    /// Rows of the keys visible to a sequence's queries, and the number of keys before its first query.
    private struct KeySource {
        let keys: UnsafePointer<Float>
        let values: UnsafePointer<Float>
        let offset: Int
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let (q, k, v) = (inputs[0], inputs[1], inputs[2])
        var out = Tensor(uninitializedShape: q.shape)
        let kvWidth = kvHeads * headDimensions
        if let cache = context.cache {
            let entry = cache.entry(block: context.blockIndex, node: context.nodeName, width: kvWidth)
            guard entry.count == context.startPosition else {
                throw OpShapeError("KV cache holds \(entry.count) tokens, the call starts at position \(context.startPosition)")
            }
            guard entry.count + context.length <= cache.capacity else {
                throw OpShapeError("context of \(entry.count + context.length) tokens exceeds the cache capacity \(cache.capacity)")
            }
            append(k, to: &entry.keys, at: entry.count)
            append(v, to: &entry.values, at: entry.count)
            entry.count += context.length
            entry.keys.withUnsafeBufferPointer { kp in
                entry.values.withUnsafeBufferPointer { vp in
                    run(q: q, out: &out, context: context) { _ in KeySource(keys: kp.baseAddress!, values: vp.baseAddress!, offset: context.startPosition) }
                }
            }
        } else {
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    run(q: q, out: &out, context: context) { b in
                        KeySource(keys: kp.baseAddress! + b * context.length * kvWidth, values: vp.baseAddress! + b * context.length * kvWidth, offset: 0)
                    }
                }
            }
        }
        return [out]
    }

    private func append(_ x: Tensor, to store: inout Tensor, at row: Int) {
        store.withUnsafeMutableBufferPointer { s in
            x.withUnsafeBufferPointer { xp in (s.baseAddress! + row * x.shape[1]).update(from: xp.baseAddress!, count: xp.count) }
        }
    }

    /// The visible key range `[start, end)` of local query row `i` (keys counted from the sequence start).
    @inline(__always) func visibleKeys(query i: Int, offset: Int) -> Range<Int> {
        let end = offset + i + 1
        return (window.map { max(0, end - $0) } ?? 0)..<end
    }

    private func run(q: Tensor, out: inout Tensor, context: ExecutionContext, source: (Int) -> KeySource) {
        if context.length == 1 && context.batch == 1 { return runOneQuery(q: q, out: &out, source: source(0)) }
        let d = headDimensions, group = heads / kvHeads
        let qWidth = heads * d, kvWidth = kvHeads * d
        let length = context.length
        let sources = (0..<context.batch).map(source)
        let maxKeys = sources.map { $0.offset }.max()! + length
        let tile = queryTileRows
        let tiles = (length + tile - 1) / tile
        let keyFloats = packedKeysCount(keys: maxKeys, dimensions: d), valueFloats = packedValuesCount(values: maxKeys, dimensions: d)
        let scoreStride = keyFloats / d
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: context.batch * kvHeads * (keyFloats + valueFloats))
        defer { packed.deallocate() }
        // (sequence, KV head) item i: its packed keys at packedItem(i), its packed values keyFloats later.
        func packedItem(_ item: Int) -> UnsafeMutablePointer<Float> { packed + item * (keyFloats + valueFloats) }
        // Each (sequence, KV head)'s keys and values, packed once for all its query tiles.
        Self.inParallel(count: context.batch * kvHeads, scratch: 0) { item, _ in
            let src = sources[item / kvHeads], g = item % kvHeads
            packKeys(src.keys + g * d, stride: kvWidth, count: src.offset + length, dimensions: d, into: packedItem(item))
            packValues(src.values + g * d, stride: kvWidth, count: src.offset + length, dimensions: d, into: packedItem(item) + keyFloats)
        }
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                let qBase = qp.baseAddress!, oBase = op.baseAddress!
                // Items are (sequence, KV head, query tile), one KV head's tiles after the other (the cores share its
                // packed keys and values in cache), latest (costliest) tiles first.
                Self.inParallel(count: context.batch * kvHeads * tiles, scratch: tile * scoreStride) { item, scores in
                    let t = tiles - 1 - item % tiles
                    let b = item / tiles / kvHeads, g = item / tiles % kvHeads
                    let src = sources[b]
                    let i0 = t * tile
                    let rowOffset = (b * length + i0) * qWidth + g * group * d
                    attendQueryTile(queries: qBase + rowOffset, queryStride: qWidth, rows: min(tile, length - i0),
                                    firstPosition: src.offset + i0, window: window, group: group,
                                    packedKeys: packedItem(b * kvHeads + g), packedValues: packedItem(b * kvHeads + g) + keyFloats,
                                    keys: src.offset + length, dimensions: d, scale: scale, scores: scores, scoreStride: scoreStride,
                                    out: oBase + rowOffset, outStride: qWidth)
                }
            }
        }
    }

    /// Decoding's attention: one query per head against the visible cached keys (`attendOneQuery`: chunks of positions
    /// spread over the worker pool, each position's keys read once for every query head).
    private func runOneQuery(q: Tensor, out: inout Tensor, source src: KeySource) {
        let d = headDimensions, kvWidth = kvHeads * d
        let visible = visibleKeys(query: 0, offset: src.offset)
        let first = visible.lowerBound * kvWidth
        q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in
            attendOneQuery(qp.baseAddress!, heads: heads, kvHeads: kvHeads, keys: src.keys + first, values: src.values + first,
                           stride: kvWidth, count: visible.count, dimensions: d, scale: scale, out: op.baseAddress!)
        }}
    }

    /// Runs `body(item, scratch)` for items `0..<count` on every core, each worker taking the next
    /// item as it finishes one (dynamic scheduling) and using its own scratch buffer of `scratch` floats,
    /// with single-threaded BLAS inside (restored afterwards).
    static func inParallel(count: Int, scratch: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let workers = min(count, processorCount)
        let saved = threadCount
        if workers > 1 { setThreadCount(1) }
        defer { if workers > 1 { setThreadCount(saved) } }
        let next = WorkCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(scratch, 1))
            defer { buffer.deallocate() }
            while let item = next.take(below: count) { body(item, buffer) }
        }
    }
}

/// A shared counter handing out work items to parallel workers.
final class WorkCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    /// The next item, or nil when all `count` items are taken.
    func take(below count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < count else { return nil }
        value += 1
        return value - 1
    }
}
