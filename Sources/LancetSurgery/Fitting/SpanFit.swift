import Foundation
import LancetIR
import LancetRuntime
import LancetTensor

/// Local fitting of one block to a *teacher output*: the output of a span of original blocks i…j on the same
/// inputs (layer collapse, removal, merging: the surviving block takes over the span's work), or any target of
/// the block's output shape. The pipeline's per-pass fit is the span of length one, where every linear has a
/// dense twin; a span has no such twins inside, so only the block's output is matched:
///
/// - `lstsq` refits, in closed form, the linear that writes the block's output: the block ends in
///   `y = r + linear(a)` (for a Llama block `y = h + mlp.down(act)`), so with A and R captured on the inputs,
///   `min_W ‖A·Wᵀ − (T − R − bias)‖² + λ‖W − W_now‖²` is exactly the block-output error plus the damping
///   (λ = damping · mean diag AᵀA; masked weights stay zero). When r itself is `r₀ + linear₂(a₂)` (`h = x + attn.o(…)`),
///   up to `innerRounds` rounds follow, each a closed-form step of block coordinate descent: linear₂ is refitted to
///   carry its output plus the remaining error T − y (the rest of the block held fixed), then the output writer again;
///   a round is kept only when it lowers the block-output error, and the rounds stop once one gains less than 1%.
///   The error after is never above the error before.
/// - `regional` runs the recipe's Adam steps on every linear of the block against the teacher (Wanda++'s
///   regional optimisation with the span as the teacher).
///
/// The outcome carries the relative block-output error ‖block(X) − T‖² / ‖T‖² before and after, and the fit's
/// own objective (for `lstsq`, relative to ‖T − R − bias‖²).
public enum SpanFit {
    /// What a span fit did.
    public struct Outcome: Sendable, Equatable {
        /// The method applied.
        public var method: FitSpec.Method
        /// Relative error of the block's outputs against the teacher before the fit.
        public var errorBefore: Double
        /// The same after the fit.
        public var errorAfter: Double
        /// The fit's objective before and after (`lstsq`: relative residual of the fitted linear).
        public var objectiveBefore: Double?
        public var objectiveAfter: Double?
        /// The fitted parameters (local names).
        public var fitted: [String]
        /// Wall time of the fit, seconds.
        public var seconds: Double
    }

    /// Fits `block` to `calibration.teacher` on `calibration.inputs` as `spec` says (`.none` only measures).
    static func fit(_ block: inout Block, index: Int, calibration: CalibrationActivations, spec: FitSpec, seed: UInt64,
                    sweep: BlockSweep) throws -> Outcome {
        let started = Date()
        // The regional fit measures the error before its steps itself; the other methods measure it here.
        let before = spec.method == .regional
            ? try RegionalFit.fit(&block, index: index, calibration: calibration, spec: spec, seed: seed, sweep: sweep)
            : try sweep.error(block, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
        var outcome = Outcome(method: spec.method, errorBefore: before, errorAfter: before, fitted: [], seconds: 0)
        switch spec.method {
        case .none:
            break
        case .lstsq:
            let writer = try outputWriter(of: block, index: index)
            let (objectiveBefore, objectiveAfter) = try fitOutputWriter(&block, writer, index: index, calibration: calibration,
                                                                       damping: spec.damping, sweep: sweep)
            outcome.objectiveBefore = objectiveBefore
            outcome.objectiveAfter = objectiveAfter
            outcome.fitted = [writer.weight]
            outcome.errorAfter = try sweep.error(block, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
            if let inner = innerWriter(of: block, residual: writer.residual) {
                for _ in 0..<innerRounds {
                    var trial = block
                    try absorbError(&trial, inner, index: index, calibration: calibration, damping: spec.damping, sweep: sweep)
                    _ = try fitOutputWriter(&trial, writer, index: index, calibration: calibration, damping: spec.damping, sweep: sweep)
                    let error = try sweep.error(trial, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
                    guard error < outcome.errorAfter else { break }
                    let gain = 1 - error / outcome.errorAfter
                    block = trial
                    outcome.errorAfter = error
                    outcome.fitted = [writer.weight, inner.weight]
                    if gain < 0.01 { break }
                }
            }
        case .regional:
            outcome.fitted = RegionalFit.trainableParameters(of: block)
            outcome.errorAfter = try sweep.error(block, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
            outcome.objectiveBefore = before
            outcome.objectiveAfter = outcome.errorAfter
        }
        outcome.seconds = Date().timeIntervalSince(started)
        return outcome
    }

    /// The linear whose output the block's last node adds to the residual: `y = residual + output`.
    struct OutputWriter {
        let node: String
        let weight: String
        let bias: String?
        /// The value the linear reads.
        let input: String
        /// The residual value added to its output.
        let residual: String
    }

    /// The block's output writer, or a `PipelineError` saying why the block has none.
    static func outputWriter(of block: Block, index: Int) throws -> OutputWriter {
        func refuse(_ why: String) -> PipelineError {
            .passFailed(pass: "fit lstsq", block: index, reason: "a span fit by least squares needs a block that ends in 'residual + linear': \(why)")
        }
        guard let last = block.nodes.last(where: { $0.outputs.contains(block.output) }) else { throw refuse("its output is not computed") }
        guard last.op is AddOp, last.inputs.count == 2 else { throw refuse("its output comes from a '\(last.kind)' node") }
        for (k, value) in last.inputs.enumerated() {
            guard let producer = block.nodes.last(where: { $0.outputs.contains(value) }), let linear = producer.op as? LinearOp else { continue }
            guard let weight = linear.weight else { throw refuse("'\(producer.name)' is low-rank") }
            return OutputWriter(node: producer.name, weight: weight, bias: linear.bias, input: producer.inputs[0], residual: last.inputs[1 - k])
        }
        throw refuse("neither input of '\(last.name)' comes from a linear")
    }

    /// The most rounds of refitting the inner writer and the output writer after the first fit.
    static let innerRounds = 3

    /// The linear feeding the residual add that produces `residual` (for a Llama block: `attn.o`), if any.
    static func innerWriter(of block: Block, residual: String) -> OutputWriter? {
        guard let add = block.nodes.last(where: { $0.outputs.contains(residual) }), add.op is AddOp, add.inputs.count == 2 else { return nil }
        for (k, value) in add.inputs.enumerated() {
            guard let producer = block.nodes.last(where: { $0.outputs.contains(value) }), let linear = producer.op as? LinearOp,
                  let weight = linear.weight else { continue }
            return OutputWriter(node: producer.name, weight: weight, bias: linear.bias, input: producer.inputs[0], residual: add.inputs[1 - k])
        }
        return nil
    }

    /// Refits `writer` so that its output also carries the block's remaining error T − y (the rest of the block held
    /// fixed): min ‖A·W'ᵀ − (A·Wᵀ + T − y)‖² + damping.
    static func absorbError(_ block: inout Block, _ writer: OutputWriter, index: Int, calibration: CalibrationActivations,
                            damping: Double, sweep: BlockSweep) throws {
        let w = block.parameters[writer.weight]!
        var gram = Tensor(zeros: [w.shape[1], w.shape[1]])
        var crossSum: Tensor?
        let output = block.output
        _ = try sweep.run(block, index: index, inputs: calibration.inputs, capture: [writer.input, output], outputWindows: 0) { windows, values in
            let a = values[writer.input]!
            var d = calibration.rows(calibration.teacher, windows: windows)
            d.subtract(values[output]!)
            d.add(matmul(a, w, transposeB: true))
            accumulateGram(a, into: &gram)
            Linear.accumulate(&crossSum, matmul(a, d, transposeA: true))
        }
        let cross = crossSum ?? Tensor(zeros: [w.shape[1], w.shape[0]])
        block.parameters[writer.weight] = try LeastSquaresFit.solveRows(w, mask: block.masks[writer.weight], gram: gram, rhs: cross, damping: damping)
    }

    /// Refits the output writer's weight; returns its objective before and after, relative to ‖T − R − bias‖².
    static func fitOutputWriter(_ block: inout Block, _ writer: OutputWriter, index: Int, calibration: CalibrationActivations,
                                damping: Double, sweep: BlockSweep) throws -> (Double, Double) {
        let w = block.parameters[writer.weight]!
        let bias = writer.bias.flatMap { block.parameters[$0] }
        var gram = Tensor(zeros: [w.shape[1], w.shape[1]])
        var crossSum: Tensor?
        var targetEnergy = 0.0
        let capture: Set<String> = [writer.input, writer.residual]
        // A = the writer's input, D = T − R − bias, per call: G += AᵀA, C += AᵀD (no output tensor is kept).
        _ = try sweep.run(block, index: index, inputs: calibration.inputs, capture: capture, outputWindows: 0) { windows, values in
            let a = values[writer.input]!
            var d = calibration.rows(calibration.teacher, windows: windows)
            d.subtract(values[writer.residual]!)
            if let bias { d.subtractRowVector(bias) }
            targetEnergy += d.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
            accumulateGram(a, into: &gram)
            Linear.accumulate(&crossSum, matmul(a, d, transposeA: true))
        }
        let cross = crossSum ?? Tensor(zeros: [w.shape[1], w.shape[0]])
        let before = LeastSquaresFit.objective(w, gram, cross) + targetEnergy
        var fitted = try LeastSquaresFit.solveRows(w, mask: block.masks[writer.weight], gram: gram, rhs: cross, damping: damping)
        if let mask = block.masks[writer.weight] { mask.apply(to: &fitted) }
        let after = LeastSquaresFit.objective(fitted, gram, cross) + targetEnergy
        block.parameters[writer.weight] = fitted
        let scale = max(targetEnergy, .leastNormalMagnitude)
        return (before / scale, after / scale)
    }
}

extension Tensor {
    /// Adds `other` (same element count) element by element.
    mutating func add(_ other: Tensor) {
        precondition(count == other.count, "add: \(shape) and \(other.shape)")
        withUnsafeMutableBufferPointer { p in other.withUnsafeBufferPointer { o in for i in 0..<p.count { p[i] += o[i] } } }
    }

    /// Subtracts `other` (same element count) element by element.
    mutating func subtract(_ other: Tensor) {
        precondition(count == other.count, "subtract: \(shape) and \(other.shape)")
        withUnsafeMutableBufferPointer { p in other.withUnsafeBufferPointer { o in for i in 0..<p.count { p[i] -= o[i] } } }
    }

    /// Subtracts `row` (`[columns]`) from every row.
    mutating func subtractRowVector(_ row: Tensor) {
        let c = row.count
        precondition(count % max(c, 1) == 0, "subtractRowVector: \(shape) and \(row.shape)")
        withUnsafeMutableBufferPointer { p in row.withUnsafeBufferPointer { r in for i in 0..<p.count { p[i] -= r[i % c] } } }
    }
}
