import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// CMoE's activation markers of a block's SwiGLU MLP on the first `windows` calibration windows: for every token, the
/// `perToken` channels whose cosine-normalised SwiGLU activation `|silu(x̂·ĝᵢ)·(x̂·ûᵢ)|` is largest are marked active
/// (x̂ the token's MLP input and ĝᵢ, ûᵢ channel i's gate and up rows, each scaled to unit length).
///
/// A self-computing analysis: it runs the block on its inputs and reads the MLP's input value.
public struct ActivationMarkers: BlockAnalysis {
    /// Calibration windows marked (CMoE carves from 8 × 2048 tokens).
    public let windows: Int
    /// Channels marked per token (CMoE's `k_act`, 10).
    public let perToken: Int

    /// Markers from `windows` windows, `perToken` channels per token.
    public init(windows: Int, perToken: Int) {
        self.windows = windows
        self.perToken = perToken
    }

    public var id: String { "activation-markers(\(windows), \(perToken))" }
    public func reads(in block: Block) -> Set<String> { [] }

    public func compute(block: Block, index: Int, inputs: Tensor, length: Int) throws -> MarkerMatrix {
        guard let gateNode = block.node("mlp.gate"), let gate = (gateNode.op as? LinearOp)?.weight.flatMap({ block.parameters[$0] }),
              let up = (block.node("mlp.up")?.op as? LinearOp)?.weight.flatMap({ block.parameters[$0] }) else {
            throw AnalysisError(id: id, reason: "the block has no dense SwiGLU MLP (mlp.gate and mlp.up with dense weights)")
        }
        let n = min(windows, inputs.shape[0] / max(length, 1))
        let x = inputs.slicingRows(0..<(n * length))
        let value = gateNode.inputs[0]
        let result = try BlockExecutor.forward(block, index: index, input: x, context: ExecutionContext(batch: n, length: length), capture: [value])
        guard let mlpInput = result.values[value] else { throw AnalysisError(id: id, reason: "value '\(value)' was not captured") }
        let input = mlpInput.unitRows()
        let g = matmul(input, gate.unitRows(), transposeB: true)
        let u = matmul(input, up.unitRows(), transposeB: true)
        let (tokens, channels) = (g.shape[0], g.shape[1])
        var markers = MarkerMatrix(tokens: tokens, channels: channels)
        let k = min(perToken, channels)
        var activation = [Float](repeating: 0, count: channels)
        g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in
            for t in 0..<tokens {
                activation.withUnsafeMutableBufferPointer { a in
                    swiglu(gate: gp.baseAddress! + t * channels, up: up.baseAddress! + t * channels, count: channels, out: a.baseAddress!)
                }
                for c in Self.largestMagnitudes(activation, count: k) { markers.mark(token: t, channel: c) }
            }
        }}
        return markers
    }

    /// The indices of the `count` entries of largest magnitude, larger first (ties: the lower index first).
    static func largestMagnitudes(_ values: [Float], count: Int) -> [Int] {
        var best: [(magnitude: Float, index: Int)] = []
        best.reserveCapacity(count + 1)
        for (i, v) in values.enumerated() {
            let m = abs(v)
            if best.count == count, let last = best.last, !(m > last.magnitude) { continue }
            var at = best.count
            while at > 0 && m > best[at - 1].magnitude { at -= 1 }
            best.insert((m, i), at: at)
            if best.count > count { best.removeLast() }
        }
        return best.map(\.index)
    }
}

/// Which channels were active for which tokens: one bit per (token, channel), stored channel by channel so that a
/// channel's pattern over the tokens is one bit vector, with each channel's count of active tokens.
public struct MarkerMatrix: AnalysisValue, Equatable {
    /// Tokens marked.
    public private(set) var tokens: Int
    /// Channels.
    public let channels: Int
    /// 64-bit words per channel.
    public private(set) var words: Int
    /// Channel-major bits: channel c's token t is bit t % 64 of `bits[c * words + t / 64]`.
    public private(set) var bits: [UInt64]
    /// Active tokens per channel.
    public private(set) var counts: [Int]

    /// An empty matrix of `tokens` × `channels`.
    public init(tokens: Int, channels: Int) {
        self.tokens = tokens
        self.channels = channels
        words = (tokens + 63) / 64
        bits = [UInt64](repeating: 0, count: words * channels)
        counts = [Int](repeating: 0, count: channels)
    }

    /// Marks `channel` active for `token` (once).
    public mutating func mark(token: Int, channel: Int) {
        let i = channel * words + token / 64, bit = UInt64(1) << UInt64(token % 64)
        if bits[i] & bit == 0 { bits[i] |= bit; counts[channel] += 1 }
    }

    /// Whether `channel` is active for `token`.
    public func isActive(token: Int, channel: Int) -> Bool { bits[channel * words + token / 64] & (UInt64(1) << UInt64(token % 64)) != 0 }

    /// The words of one channel's pattern.
    public func pattern(_ channel: Int) -> ArraySlice<UInt64> { bits[(channel * words)..<((channel + 1) * words)] }

    /// The tokens for which `channel` is active, ascending.
    public func activeTokens(_ channel: Int) -> [Int] {
        var out: [Int] = []
        for (w, word) in pattern(channel).enumerated() {
            var rest = word
            while rest != 0 {
                out.append(w * 64 + rest.trailingZeroBitCount)
                rest &= rest - 1
            }
        }
        return out
    }

    /// The Hamming distance between two channels' patterns.
    public func hammingDistance(_ a: Int, _ b: Int) -> Int {
        var d = 0
        for w in 0..<words { d += (bits[a * words + w] ^ bits[b * words + w]).nonzeroBitCount }
        return d
    }

    /// The number of tokens for which both channels are active.
    public func coactivations(_ a: Int, _ b: Int) -> Int {
        var n = 0
        for w in 0..<words { n += (bits[a * words + w] & bits[b * words + w]).nonzeroBitCount }
        return n
    }

    /// Appends `other`'s tokens after this matrix's (same channels).
    public mutating func merge(_ other: MarkerMatrix) {
        precondition(other.channels == channels, "MarkerMatrix: \(other.channels) channels merged into \(channels)")
        var joined = MarkerMatrix(tokens: tokens + other.tokens, channels: channels)
        for c in 0..<channels {
            for t in activeTokens(c) { joined.mark(token: t, channel: c) }
            for t in other.activeTokens(c) { joined.mark(token: tokens + t, channel: c) }
        }
        self = joined
    }
}
