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
    /// backward), kept in a `KroneckerFactorStore` on disk. Returns the store and the mean NLL of the labels used.
    ///
    /// `inputWindows`, when given, are the windows A is computed on instead, by one forward over them (A needs no
    /// gradient, so it can read many more windows than the backward at a forward's cost); G still comes from
    /// `windows`.
    ///
    /// Memory: one block's factor sums (each batch's are added to the block's file as the backward visits the
    /// block), plus one batch's backward (its block boundaries and one block's tape); with `inputWindows`, the
    /// forward for A holds those windows' hidden states and one block's A sums (`ModelPassContext.sweepByBlock`).
    public static func collect(_ model: Model, nodes: [[String]], context: ModelPassContext, labels: ModelGradients.Labels,
                               windows: Range<Int>, windowsPerBatch: Int,
                               inputWindows: Range<Int>? = nil) throws -> (store: KroneckerFactorStore, loss: Double) {
        precondition(nodes.count == model.blocks.count, "KroneckerFactors.collect: one node list per block")
        // Which values each block's factors read: a linear's input (A) and its output (G).
        let linears: [[KroneckerFactorStore.Linear]] = model.blocks.indices.map { b in
            nodes[b].compactMap { name in
                guard let node = model.blocks[b].node(name), node.inputs.count == 1, node.outputs.count == 1 else { return nil }
                return KroneckerFactorStore.Linear(node: name, input: node.inputs[0], output: node.outputs[0])
            }
        }
        // A from its own forward only when its windows differ from the backward's.
        let separateInputs = inputWindows.flatMap { $0 == windows ? nil : $0 }
        let store = try KroneckerFactorStore(linears: linears, tokens: windows.count * context.length,
                                             inputTokens: separateInputs.map { $0.count * context.length })
        let inputs = Set(linears.joined().map(\.input)), outputs = Set(linears.joined().map(\.output))
        let predictions = Float(windows.count * (context.length - 1))
        let loss = try context.lossGradients(of: model, labels: labels, windows: windows, windowsPerBatch: windowsPerBatch,
                                             capture: separateInputs == nil ? inputs : [], captureGradients: outputs) { _, step in
            var sums: [String: Tensor] = [:]
            for input in Set(linears[step.block].map(\.input)) {
                guard let x = step.values[input] else { continue }
                sums["A:" + input] = gram(x)
            }
            for output in Set(linears[step.block].map(\.output)) {
                guard let g = step.valueGradients[output] else { continue }
                // The backward's gradients are of the mean NLL over `predictions`; G is of the summed NLL.
                var sum = Tensor(zeros: [g.shape[1], g.shape[1]])
                accumulateGram(g, into: &sum, alpha: predictions * predictions)
                sums["G:" + output] = sum
            }
            if !sums.isEmpty { try store.add(block: step.block, sums: sums) }
        }
        if let separateInputs {
            // Block by block, so that one block's A sums are in memory at a time: each goes to the store when the
            // forward has run every chunk of its block.
            var sums: [String: Tensor] = [:]
            try context.sweepByBlock(model, windows: separateInputs, capture: inputs, visit: { chunk in
                for input in Set(linears[chunk.block].map(\.input)) {
                    guard let x = chunk.values[input] else { continue }
                    accumulateGram(x, into: &sums["A:" + input, default: Tensor(zeros: [x.shape[1], x.shape[1]])])
                }
            }, finishBlock: { block in
                if !sums.isEmpty { try store.add(block: block, sums: sums) }
                sums = [:]
            })
        }
        return (store, loss)
    }

    /// `t` times `factor`.
    static func scaled(_ t: Tensor, _ factor: Double) -> Tensor {
        var out = t
        out.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float(Double(p[i]) * factor) } }
        return out
    }
}
