import LancetIR
import LancetRuntime
import LancetSurgery
import LancetTensor

/// The final hidden states (after the final norm) of a model on calibration windows, and LaCo's similarity of two
/// models' final states: per window, the cosine of the two states flattened over tokens and hidden units, averaged
/// over windows.
struct FinalStates {
    /// One tensor `[windows·length, hidden]` per chunk of `windowsPerCall` windows.
    let chunks: [Tensor]
    /// Tokens per window.
    let length: Int

    /// The final states of `model` on the first `windows` calibration windows of `context`.
    init(of model: Model, windows: Int, context: ModelPassContext) throws {
        let runner = ModelRunner(model: model)
        var chunks: [Tensor] = []
        var w = 0
        while w < windows {
            let range = w..<min(w + context.windowsPerCall, windows)
            let execution = ExecutionContext(batch: range.count, length: context.length)
            var x = try runner.embed(Array(context.calibrationWindows[range].joined()))
            for (i, block) in model.blocks.enumerated() {
                x = try BlockExecutor.forward(block, index: i, input: x, context: execution).output
            }
            chunks.append(runner.finalNorm(x))
            w = range.upperBound
        }
        self.chunks = chunks
        self.length = context.length
    }

    /// The mean over windows of the cosine between this model's and `other`'s flattened final states per window.
    func similarity(to other: FinalStates) -> Double {
        precondition(chunks.count == other.chunks.count && length == other.length, "FinalStates.similarity: different windows")
        var sum = 0.0, windows = 0
        for (a, b) in zip(chunks, other.chunks) {
            let width = a.shape[1] * length
            a.withUnsafeBufferPointer { x in
                b.withUnsafeBufferPointer { y in
                    for start in stride(from: 0, to: x.count, by: width) {
                        var dot = 0.0, xx = 0.0, yy = 0.0
                        for i in start..<(start + width) {
                            dot += Double(x[i]) * Double(y[i])
                            xx += Double(x[i]) * Double(x[i])
                            yy += Double(y[i]) * Double(y[i])
                        }
                        sum += dot / max((xx * yy).squareRoot(), 1e-30)
                        windows += 1
                    }
                }
            }
        }
        return sum / Double(max(windows, 1))
    }
}
