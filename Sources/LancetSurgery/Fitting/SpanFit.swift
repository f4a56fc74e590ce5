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
/// - `reform` re-solves the kept weights of every masked linear against its dense twin (`Reformation`): only for a
///   block that is its dense twin with masks (the model context passes the original block at the same index).
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
                    sweep: BlockSweep, dense: Block? = nil) throws -> Outcome {
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
        case .reform:
            // Layer by layer against the block's dense twin (the same parameters, unmasked) on the dense block's inputs.
            guard let dense, dense.parameters.allSatisfy({ name, t in block.parameters[name]?.shape == t.shape }) else {
                throw PipelineError.passFailed(pass: "fit reform", block: index,
                                               reason: "reformation fits a masked block against its dense twin of the same shapes; this block has none (a span or a resized block: use lstsq or regional)")
            }
            let targets = Reformation.targets(cut: block, dense: dense)
            let grams = try StatisticsCollector(sweep: sweep).collect(dense, index: index, inputs: calibration.inputs,
                                                                      analyses: Set(targets.map(\.input)).sorted().map { InputGram(value: $0) },
                                                                      teacherWindows: 0).statistics
            let (objectiveBefore, objectiveAfter) = try Reformation.fit(&block, dense: dense,
                                                                        grams: Dictionary(uniqueKeysWithValues: try targets.map { ($0.input, try grams.gram(of: $0.input)) }),
                                                                        spec: spec)
            outcome.fitted = targets.map(\.weight)
            outcome.objectiveBefore = objectiveBefore
            outcome.objectiveAfter = objectiveAfter
            outcome.errorAfter = try sweep.error(block, index: index, inputs: calibration.inputs, teacher: calibration.teacher)
        }
        outcome.seconds = Date().timeIntervalSince(started)
        return outcome
    }

    /// A linear whose output a two-input add adds to a residual value: `sum = residual + linear(input)` (the block's
    /// output, or a residual sum inside the block).
    struct OutputWriter {
        let node: String
        let weight: String
        let bias: String?
        /// The value the linear reads.
        let input: String
        /// The residual value added to its output.
        let residual: String
    }

    /// Why a value is not `residual + linear(a)`.
    struct NoWriter: Error {
        let reason: String
    }

    /// The linear whose output the node producing `value` adds to its other input (`value = residual + linear(a)`),
    /// or why `value` is no such sum.
    static func writer(into value: String, of block: Block) -> Result<OutputWriter, NoWriter> {
        guard let sum = block.nodes.last(where: { $0.outputs.contains(value) }) else { return .failure(NoWriter(reason: "its output is not computed")) }
        guard sum.op is AddOp, sum.inputs.count == 2 else { return .failure(NoWriter(reason: "its output comes from a '\(sum.kind)' node")) }
        for (k, input) in sum.inputs.enumerated() {
            guard let producer = block.nodes.last(where: { $0.outputs.contains(input) }), let linear = producer.op as? LinearOp else { continue }
            guard let weight = linear.weight else { return .failure(NoWriter(reason: "'\(producer.name)' is low-rank")) }
            return .success(OutputWriter(node: producer.name, weight: weight, bias: linear.bias, input: producer.inputs[0], residual: sum.inputs[1 - k]))
        }
        return .failure(NoWriter(reason: "neither input of '\(sum.name)' comes from a linear"))
    }

    /// The block's output writer, or a `PipelineError` saying why the block has none.
    static func outputWriter(of block: Block, index: Int) throws -> OutputWriter {
        try writer(into: block.output, of: block).mapError { problem in
            PipelineError.passFailed(pass: "fit lstsq", block: index,
                                     reason: "a span fit by least squares needs a block that ends in 'residual + linear': \(problem.reason)")
        }.get()
    }

    /// The most rounds of refitting the inner writer and the output writer after the first fit.
    static let innerRounds = 3

    /// The linear feeding the residual sum `residual` (for a Llama block: `attn.o`), if there is one.
    static func innerWriter(of block: Block, residual: String) -> OutputWriter? {
        try? writer(into: residual, of: block).get()
    }

    /// Refits `writer` so that its output also carries the block's remaining error T − y (the rest of the block held
    /// fixed): min ‖A·W'ᵀ − (A·Wᵀ + T − y)‖² + damping.
    static func absorbError(_ block: inout Block, _ writer: OutputWriter, index: Int, calibration: CalibrationActivations,
                            damping: Double, sweep: BlockSweep) throws {
        let w = block.parameters[writer.weight]!
        let output = block.output
        let (gram, cross) = try normalEquations(block, writer, index: index, calibration: calibration, sweep: sweep, reading: output) { windows, values in
            var d = calibration.rows(calibration.teacher, windows: windows)
            d.subtract(values[output]!)
            d.add(matmul(values[writer.input]!, w, transposeB: true))
            return d
        }
        block.parameters[writer.weight] = try solve(block, writer, gram: gram, cross: cross, damping: damping)
    }

    /// Refits the output writer's weight; returns its objective before and after, relative to ‖T − R − bias‖².
    static func fitOutputWriter(_ block: inout Block, _ writer: OutputWriter, index: Int, calibration: CalibrationActivations,
                                damping: Double, sweep: BlockSweep) throws -> (Double, Double) {
        let w = block.parameters[writer.weight]!
        let bias = writer.bias.flatMap { block.parameters[$0] }
        var targetEnergy = 0.0
        // D = T − R − bias.
        let (gram, cross) = try normalEquations(block, writer, index: index, calibration: calibration, sweep: sweep, reading: writer.residual) { windows, values in
            var d = calibration.rows(calibration.teacher, windows: windows)
            d.subtract(values[writer.residual]!)
            if let bias { d.subtractRowVector(bias) }
            targetEnergy += d.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
            return d
        }
        let before = LeastSquaresFit.objective(w, gram, cross) + targetEnergy
        let fitted = try solve(block, writer, gram: gram, cross: cross, damping: damping)
        let after = LeastSquaresFit.objective(fitted, gram, cross) + targetEnergy
        block.parameters[writer.weight] = fitted
        let scale = max(targetEnergy, .leastNormalMagnitude)
        return (before / scale, after / scale)
    }

    /// G = Σ AᵀA and C = Σ AᵀD over the calibration windows, A the writer's input and D = `target` of each call's
    /// window range and captured values (A and `value`); no block output is kept.
    static func normalEquations(_ block: Block, _ writer: OutputWriter, index: Int, calibration: CalibrationActivations, sweep: BlockSweep,
                                reading value: String, target: (Range<Int>, [String: Tensor]) -> Tensor) throws -> (gram: Tensor, cross: Tensor) {
        let w = block.parameters[writer.weight]!
        var gram = Tensor(zeros: [w.shape[1], w.shape[1]])
        var crossSum: Tensor?
        _ = try sweep.run(block, index: index, inputs: calibration.inputs, capture: [writer.input, value], outputWindows: 0) { windows, values in
            let a = values[writer.input]!
            let d = target(windows, values)
            accumulateGram(a, into: &gram)
            Linear.accumulate(&crossSum, matmul(a, d, transposeA: true))
        }
        return (gram, crossSum ?? Tensor(zeros: [w.shape[1], w.shape[0]]))
    }

    /// The writer's weight from the normal equations, damped towards its current value, masked weights zero.
    static func solve(_ block: Block, _ writer: OutputWriter, gram: Tensor, cross: Tensor, damping: Double) throws -> Tensor {
        let mask = block.masks[writer.weight]
        var fitted = try LeastSquaresFit.solveRows(block.parameters[writer.weight]!, mask: mask, gram: gram, rhs: cross, damping: damping)
        mask?.apply(to: &fitted)
        return fitted
    }
}

extension Tensor {
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
