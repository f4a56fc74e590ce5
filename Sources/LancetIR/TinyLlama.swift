import LancetTensor

/// Small seeded Llama-family models for tests and examples: realistic structure (GQA, RoPE, SwiGLU,
/// tied head), random weights scaled like a trained model's so activations stay in range.
public enum TinyLlama {
    /// Sizes of a tiny model.
    public struct Sizes: Sendable {
        /// Residual width.
        public var hidden = 48
        /// Decoder blocks.
        public var blocks = 2
        /// Query heads.
        public var heads = 4
        /// KV heads.
        public var kvHeads = 2
        /// FFN width.
        public var ffn = 96
        /// Vocabulary size.
        public var vocabulary = 64
        /// Whether the output head is tied to the embedding.
        public var tied = true
        /// Default sizes.
        public init() {}
    }

    /// A model with weights drawn from `seed`.
    public static func make(_ sizes: Sizes = Sizes(), seed: UInt64 = 0, pairing: RopePairing = .adjacent) -> Model {
        var g = SeededGenerator(seed: seed)
        let h = sizes.hidden, d = h / sizes.heads
        func w(_ rows: Int, _ cols: Int) -> Tensor { Tensor.randomNormal(shape: [rows, cols], std: 1 / Float(cols).squareRoot(), generator: &g) }
        func norm(_ n: Int) -> Tensor {
            Tensor(shape: [n], (0..<n).map { _ in 1 + 0.1 * g.nextNormal() })
        }
        let rope = RopeConfig(theta: 10000, rotaryDimensions: d, pairing: pairing)
        let attention = LlamaBlock.Attention(heads: sizes.heads, kvHeads: sizes.kvHeads, headDimensions: d)
        let blocks = (0..<sizes.blocks).map { _ in
            LlamaBlock.make(attention: attention, hasMLP: true, epsilon: 1e-5, rope: rope, parameters: [
                "attn_norm.weight": norm(h),
                "attn.q.weight": w(sizes.heads * d, h), "attn.k.weight": w(sizes.kvHeads * d, h),
                "attn.v.weight": w(sizes.kvHeads * d, h), "attn.o.weight": w(h, sizes.heads * d),
                "mlp_norm.weight": norm(h),
                "mlp.gate.weight": w(sizes.ffn, h), "mlp.up.weight": w(sizes.ffn, h), "mlp.down.weight": w(h, sizes.ffn),
            ])
        }
        let config = ModelConfig(architecture: "llama", name: "tiny-llama-\(seed)", hiddenSize: h, vocabularySize: sizes.vocabulary,
                                 contextLength: 512, normEpsilon: 1e-5, rope: rope)
        return Model(config: config, embedding: Tensor.randomNormal(shape: [sizes.vocabulary, h], std: 1, generator: &g), blocks: blocks,
                     finalNorm: norm(h), outputHead: sizes.tied ? nil : w(sizes.vocabulary, h))
    }
}
