import LancetIR
import LancetRuntime
import LancetTensor

/// One block's least-squares fit (`fit: lstsq`): the linears round by round along the dataflow, then every
/// readout (a mixture's down projections) on its features in the block the linears' fits left, and, for a
/// linear router, rounds of the router refitted from the refitted experts followed by the readout again.
///
/// Every statistic comes from paired runs over the calibration windows: the cut block on the cut model's inputs
/// beside the dense block on `denseInputs` (a model teacher) or on the same inputs. The dense block's values come
/// from `denseValues` when the sweep that made the teacher kept them, and the cut block's later rounds resume from
/// the values its earlier rounds captured (the inputs of a round lie upstream of every later refit), so each run
/// computes only what changed.
struct BlockLeastSquares {
    /// The dense block the cut started from.
    let original: Block
    /// The block's index in the model.
    let index: Int
    /// The cut model's inputs to the block, and the teacher the error after the cut is measured against.
    let activations: CalibrationActivations
    /// The dense model's inputs to the block (a model teacher), or nil for the cut model's.
    let denseInputs: Tensor?
    let sweep: BlockSweep
    let spec: FitSpec
    /// The dense block's values on the cut model's inputs, kept by the sweep that made the teacher (only without
    /// `denseInputs`); values not kept are computed by running the dense block.
    let denseValues: KeptValues?
    /// The cut block's error against the teacher on the first call's windows, measured during the first paired run.
    private(set) var errorAfterCut: Double?
    /// The cut block's values at the inputs of the rounds fitted so far, which later rounds resume from.
    private var cutValues: KeptValues?
    /// The fitted block's values on every window from which its output follows (`BlockExecutor.resumePoint`),
    /// kept by the last round of linears when nothing is refitted after it; nil otherwise.
    private(set) var outputResume: KeptValues?
    /// Whether later rounds resume from earlier rounds' values (else each round runs the cut block from its input).
    var resumesRounds = true
    /// Whether the last round keeps the values the fitted block's output can be computed from (`outputResume`).
    var keepsResumePoint = true

    init(original: Block, index: Int, activations: CalibrationActivations, denseInputs: Tensor?, sweep: BlockSweep, spec: FitSpec,
         denseValues: KeptValues? = nil) {
        self.original = original
        self.index = index
        self.activations = activations
        self.denseInputs = denseInputs
        self.sweep = sweep
        self.spec = spec
        self.denseValues = denseInputs == nil ? denseValues : nil
    }

    /// Fits `block`; the objectives are the layers' reconstruction errors relative to the dense outputs' energy.
    mutating func fit(_ block: inout Block, statistics: BlockStatistics) throws -> Pipeline.FitOutcome {
        var before = 0.0, after = 0.0
        let rounds = LeastSquaresFit.rounds(LeastSquaresFit.targets(cut: block, dense: original), in: block)
        cutValues = rounds.count > 1 && resumesRounds ? KeptValues(windows: activations.windows, length: sweep.length) : nil
        // The readouts to refit after the linears (the linears' refits write only linear weights, never a readout's).
        let readouts = ReadoutFit.targets(cut: block, dense: original)
        // When the linears are the last thing refitted, the last round's run (on the block as it ends, but for the
        // round's own weights) also keeps what the fitted block's output follows from.
        let endsWithLinears = keepsResumePoint && readouts.isEmpty
        for (k, round) in rounds.enumerated() {
            let last = k == rounds.count - 1
            var resumeNames = Set<String>()
            if last && endsWithLinears {
                resumeNames = BlockExecutor.resumePoint(afterChanging: Set(round.map(\.node)), in: block)
                outputResume = KeptValues(windows: activations.windows, length: sweep.length)
            }
            let r = try refitLinears(round, in: &block, statistics: statistics, keepInputs: !last, keepForOutput: resumeNames)
            before += r.before
            after += r.after
        }
        cutValues = nil                         // readout and router refits may change what they hold
        for target in readouts {
            let r = try refitReadout(target, in: &block)
            before += r.before
            var last = r.after
            if let op = block.node(target.node)?.op as? LinearRouterOp, let router = op.linearRouterParameter {
                for _ in 0..<spec.routerRounds {
                    block.parameters[router] = try refittedRouter(op, router: router, target: target, in: block)
                    last = try refitReadout(target, in: &block).after
                }
            }
            after += last
        }
        return Pipeline.FitOutcome(errorAfterCut: errorAfterCut, objectiveBefore: before, objectiveAfter: after, outputResume: outputResume)
    }

    /// One round of linears: X' (cut block, earlier rounds already refitted) and X (dense block) of each fitted
    /// input on the same windows, then the closed-form solves. Under a model teacher a linear that writes into
    /// the residual stream also carries the stream's drift (`LeastSquaresFit.ResidualDrift`).
    /// With `keepInputs` the cut block's values of the round's inputs are kept for the later rounds, and the values
    /// `keepForOutput` for the fitted block's output (`outputResume`).
    private mutating func refitLinears(_ round: [LeastSquaresFit.Target], in block: inout Block, statistics: BlockStatistics,
                                       keepInputs: Bool, keepForOutput: Set<String> = []) throws -> (before: Double, after: Double) {
        let inputs = Set(round.map(\.input))
        let model = denseInputs != nil
        let writers: [(target: LeastSquaresFit.Target, residual: String)] = model ? round.compactMap { t in
            block.node(t.node).flatMap { block.residualSummand(of: $0) }.map { (t, $0) }
        } : []
        var cutGram: [String: Tensor] = [:], cross: [String: Tensor] = [:], modelGram: [String: Tensor] = [:]
        var drift: [String: LeastSquaresFit.ResidualDrift] = [:]
        // Targets whose right-hand sides come from the dense outputs the statistics sweep kept (by node: its input and
        // output).
        let keptDense = denseValues?.names ?? []
        let productInputs = model ? [:] : LeastSquaresFit.denseOutputProducts(of: round.map(\.node), in: original)
            .filter { _, outputs in outputs.allSatisfy(keptDense.contains) }
        let productOutputs = Dictionary(uniqueKeysWithValues: round.compactMap { t in
            productInputs[t.input] != nil ? original.node(t.node).map { (t.node, (input: t.input, output: $0.outputs[0])) } : nil
        })
        var products: [String: LeastSquaresFit.DenseProduct] = [:]
        let keep = keepInputs ? inputs : []
        try paired(block, capture: inputs.union(writers.map(\.residual)), denseCapture: Set(productOutputs.values.map(\.output)), keepCut: keep,
                   keepForOutput: keepForOutput) { denseValues, cutValues in
            for (t, r) in writers {
                var delta = denseValues[r]!
                delta.add(cutValues[r]!, scale: -1)
                let xc = cutValues[t.input]!, xd = denseValues[t.input]!
                let energy = delta.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
                if drift[t.node] == nil {
                    drift[t.node] = .init(cut: Tensor(zeros: [xc.shape[1], delta.shape[1]]), dense: Tensor(zeros: [xd.shape[1], delta.shape[1]]))
                }
                drift[t.node]!.cut.add(matmul(xc, delta, transposeA: true))
                drift[t.node]!.dense.add(matmul(xd, delta, transposeA: true))
                drift[t.node]!.energy += energy
            }
            for (node, values) in productOutputs {
                let xc = cutValues[values.input]!, y = denseValues[values.output]!
                let energy = y.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: $0.count) }
                products[node, default: .init(rhs: Tensor(zeros: [xc.shape[1], y.shape[1]]))].energy += energy
                products[node]!.rhs.add(matmul(xc, y, transposeA: true))
            }
            for name in inputs {
                let xc = cutValues[name]!
                if cutGram[name] == nil { cutGram[name] = Tensor(zeros: [xc.shape[1], xc.shape[1]]) }
                accumulateGram(xc, into: &cutGram[name]!)
                if productInputs[name] != nil { continue }
                let xd = denseValues[name]!
                if cross[name] == nil {
                    cross[name] = Tensor(zeros: [xc.shape[1], xd.shape[1]])
                    if model { modelGram[name] = Tensor(zeros: [xd.shape[1], xd.shape[1]]) }
                }
                Linear.accumulate(&cross[name], matmul(xc, xd, transposeA: true))
                if model { accumulateGram(xd, into: &modelGram[name]!) }
            }
        }
        // The dense layer's Gram on the inputs it reads: the block's (from the analyses) or the model's.
        var denseGram = modelGram
        if !model { for name in inputs where productInputs[name] == nil { denseGram[name] = try statistics.gram(of: name) } }
        return try LeastSquaresFit.fit(&block, targets: round, cutGram: cutGram, crossGram: cross, denseGram: denseGram,
                                       denseProducts: products, drift: drift, damping: spec.damping)
    }

    /// Refits a readout jointly on its features in `block` against the dense block's output of the op.
    private mutating func refitReadout(_ target: ReadoutFit.Target, in block: inout Block) throws -> (before: Double, after: Double) {
        guard let op = block.node(target.node)?.op as? LinearReadoutOp else { return (0, 0) }
        var s = ReadoutFit.Statistics()
        let fitted = block, length = sweep.length
        try paired(block, capture: [target.input, target.output]) { denseValues, cutValues in
            let x = cutValues[target.input]!
            let layout = ExecutionContext(batch: x.shape[0] / length, length: length)
            let readout = try op.readout(x, parameters: fitted, context: layout)
            var y = denseValues[target.output]!
            if let offset = readout.offset { y.add(offset, scale: -1) }
            s.add(features: readout.features, target: y)
        }
        return try ReadoutFit.fit(&block, target: target, statistics: s, damping: spec.damping)
    }

    /// The linear router refitted from the experts' benefits against the dense output less the unrouted part.
    private mutating func refittedRouter(_ op: any LinearRouterOp, router: String, target: ReadoutFit.Target, in block: Block) throws -> Tensor {
        var statistics = RouterFit(experts: op.routedExperts, topK: op.routedTopK, hidden: block.parameters[router]!.shape[1])
        try paired(block, capture: [target.input, target.output]) { denseValues, cutValues in
            let x = cutValues[target.input]!
            var residual = denseValues[target.output]!
            if let u = try op.unroutedOutput(x, parameters: block) { residual.add(u, scale: -1) }
            statistics.add(x, residual: residual, expertOutputs: try (0..<op.routedExperts).map { try op.routedOutput(x, expert: $0, parameters: block) })
        }
        return try statistics.fitted()
    }

    /// A paired run of the dense block and `block` capturing `capture`; the first one (always a run before any
    /// refit: the linears' first round, or a readout's first) also measures the cut block's error against the
    /// teacher, on the first call's windows (the rest of the run computes only what the captures need). The cut
    /// block's values of `keepCut` are kept for later rounds, and those of `keepForOutput` in `outputResume`. The dense
    /// block's values of `denseCapture` are captured too.
    private mutating func paired(_ block: Block, capture: Set<String>, denseCapture: Set<String> = [], keepCut: Set<String> = [],
                                 keepForOutput: Set<String> = [], visit: ([String: Tensor], [String: Tensor]) throws -> Void) throws {
        let measure = errorAfterCut == nil
        let taught = min(sweep.windowsPerCall, activations.teacher.shape[0] / sweep.length)
        let teacher = measure ? activations.teacher.slicingRows(0..<(taught * sweep.length)) : activations.teacher
        // Resume only from earlier rounds' values: this run writes its own call by call.
        let dense = denseValues, cut = cutValues, earlier = cutValues?.names ?? [], output = outputResume
        let error = try sweep.runPaired(original, block, index: index, inputs: activations.inputs, aInputs: denseInputs, teacher: teacher,
                                        capture: capture.union(keepForOutput), aCapture: denseCapture, measureError: measure,
                                        aValues: { dense?.values(capture.union(denseCapture), windows: $0) },
                                        bGiven: { range in cut?.values(earlier, windows: range) ?? [:] }) { range, denseValues, cutValues in
            cut?.store(cutValues, names: keepCut, windows: range)
            output?.store(cutValues, names: keepForOutput, windows: range)
            try visit(denseValues, cutValues)
        }
        if measure { errorAfterCut = error }
    }
}
