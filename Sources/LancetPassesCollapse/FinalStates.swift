import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// The final hidden states (after the final norm) of a model on calibration windows, and LaCo's similarity of two
/// models' final states: per window, the cosine of the two states flattened over tokens and hidden units, averaged
/// over windows.
struct FinalStates {
    /// One tensor `[windows, length·hidden]` per chunk of calibration windows: a row per window, flattened.
    let chunks: [Tensor]

    /// The final states of `model` on the first `windows` calibration windows of `context` (one streamed sweep).
    init(of model: Model, windows: Int, context: ModelPassContext) throws {
        let runner = ModelRunner(model: model)
        let last = model.blocks.count - 1
        var chunks: [Tensor] = []
        try context.sweep(model, windows: 0..<windows) { chunk in
            guard chunk.block == last else { return }
            chunks.append(runner.finalNorm(chunk.output).reshaped([chunk.windows.count, context.length * chunk.output.shape[1]]))
        }
        self.chunks = chunks
    }

    /// The mean over windows of the cosine between this model's and `other`'s flattened final states per window.
    func similarity(to other: FinalStates) -> Double {
        precondition(chunks.map(\.shape) == other.chunks.map(\.shape), "FinalStates.similarity: different windows")
        let cosines = zip(chunks, other.chunks).flatMap { LayerScores.rowCosines($0, $1) }
        return cosines.reduce(0, +) / Double(max(cosines.count, 1))
    }
}
