import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// The Kronecker factors (K-FAC) of the curvature of the language-model loss with respect to one linear's
/// weight W (`[out, in]`, y = W x): the Fisher is approximated by F ≈ G ⊗ A (row-major W: entry (i, j) is
/// index i·in + j), with
///
///     A = (1/N) Σ_t x_t x_tᵀ      [in, in]    the layer's inputs
///     G = (1/N) Σ_t g_t g_tᵀ      [out, out]  g_t = ∂(Σ NLL)/∂y_t, the loss gradient at the layer's output
///
/// over the N tokens of the curvature windows (per-token gradient of W: g_t x_tᵀ). The gradients come from
/// `ModelPassContext.lossGradients`, one backward of the whole model; with sampled labels (the model's own
/// next-token draws) G is the "true" Fisher's factor, as the LLM Surgeon uses.
public struct KroneckerFactors: Sendable {
    /// The input factor A, `[in, in]`.
    public var a: Tensor
    /// The output-gradient factor G, `[out, out]`.
    public var g: Tensor
    /// The tokens N both are averaged over.
    public var tokens: Int

    /// Factors from their parts.
    public init(a: Tensor, g: Tensor, tokens: Int) {
        self.a = a
        self.g = g
        self.tokens = tokens
    }

    /// The K-FAC factors of the linears `nodes[b]` (node names) of every block b of `model`, from one backward of
    /// the language-model loss over `windows` of the context's calibration set (`windowsPerBatch` windows per
    /// backward). Returns the factors by block and node name, and the mean NLL of the labels used.
    ///
    /// Memory: the factors of every listed linear (they are accumulated over the batches), plus one batch's
    /// backward (its block boundaries and one block's tape).
    public static func collect(_ model: Model, nodes: [[String]], context: ModelPassContext, labels: ModelGradients.Labels,
                               windows: Range<Int>, windowsPerBatch: Int) throws -> (factors: [[String: KroneckerFactors]], loss: Double) {
        precondition(nodes.count == model.blocks.count, "KroneckerFactors.collect: one node list per block")
        // Which values each block's factors read: a linear's input (A) and its output (G).
        let io: [[(node: String, input: String, output: String)]] = model.blocks.indices.map { b in
            nodes[b].compactMap { name in
                guard let node = model.blocks[b].node(name), node.inputs.count == 1, node.outputs.count == 1 else { return nil }
                return (name, node.inputs[0], node.outputs[0])
            }
        }
        let capture = Set(io.joined().map(\.input)), captureGradients = Set(io.joined().map(\.output))
        var inputGrams = [[String: Tensor]](repeating: [:], count: model.blocks.count)
        var outputGrams = [[String: Tensor]](repeating: [:], count: model.blocks.count)
        let predictions = Float(windows.count * (context.length - 1))
        let loss = try context.lossGradients(of: model, labels: labels, windows: windows, windowsPerBatch: windowsPerBatch,
                                             capture: capture, captureGradients: captureGradients) { _, step in
            for input in Set(io[step.block].map(\.input)) {
                guard let x = step.values[input] else { continue }
                if inputGrams[step.block][input] == nil { inputGrams[step.block][input] = Tensor(zeros: [x.shape[1], x.shape[1]]) }
                accumulateGram(x, into: &inputGrams[step.block][input]!)
            }
            for output in Set(io[step.block].map(\.output)) {
                guard let g = step.valueGradients[output] else { continue }
                // The backward's gradients are of the mean NLL over `predictions`; G is of the summed NLL.
                if outputGrams[step.block][output] == nil { outputGrams[step.block][output] = Tensor(zeros: [g.shape[1], g.shape[1]]) }
                accumulateGram(g, into: &outputGrams[step.block][output]!, alpha: predictions * predictions)
            }
        }
        let tokens = windows.count * context.length
        let factors: [[String: KroneckerFactors]] = model.blocks.indices.map { b in
            var result: [String: KroneckerFactors] = [:]
            for entry in io[b] {
                guard let a = inputGrams[b][entry.input], let g = outputGrams[b][entry.output] else { continue }
                result[entry.node] = KroneckerFactors(a: scaled(a, 1 / Double(tokens)), g: scaled(g, 1 / Double(tokens)), tokens: tokens)
            }
            return result
        }
        return (factors, loss)
    }

    /// `t` times `factor`.
    static func scaled(_ t: Tensor, _ factor: Double) -> Tensor {
        var out = t
        out.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float(Double(p[i]) * factor) } }
        return out
    }
}
