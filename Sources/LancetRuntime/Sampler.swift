import LancetIR
import LancetTensor

/// Picks the next token from logits: greedy (temperature 0), or sampling with temperature and nucleus
/// (top-p) truncation from a seeded generator, so a run with the same seed repeats exactly.
public struct Sampler {
    /// 0 means greedy.
    public var temperature: Float
    /// Nucleus mass kept (1 keeps everything).
    public var topP: Float
    private var generator: SeededGenerator

    /// Creates a sampler.
    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.generator = SeededGenerator(seed: seed)
    }

    /// The next token id.
    ///
    /// Logits with a NaN have no distribution to sample: the first NaN is returned, in both modes, as
    /// `argmax` counts NaN as the largest (`Generator` refuses NaN logits before asking).
    public mutating func next(_ logits: [Float]) -> Int32 {
        if let nan = logits.firstIndex(where: \.isNaN) { return Int32(nan) }
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        let maxLogit = logits.max()!
        var probs = logits.map { Elementwise.exp(($0 - maxLogit) / temperature) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var order = Array(probs.indices)
        order.sort { probs[$0] != probs[$1] ? probs[$0] > probs[$1] : $0 < $1 }
        var kept: [Int] = []
        var mass: Float = 0
        for i in order {
            kept.append(i)
            mass += probs[i]
            if mass >= topP { break }
        }
        var r = generator.nextFloat() * mass
        for i in kept {
            r -= probs[i]
            if r < 0 { return Int32(i) }
        }
        return Int32(kept.last!)
    }
}
