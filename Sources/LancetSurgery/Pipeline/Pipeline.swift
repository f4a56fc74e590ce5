import Foundation
import LancetData
import LancetIO
import LancetIR
import LancetRuntime
import LancetTensor

/// Runs a recipe's stages on a model. Block-scope passes of a stage share one streaming sweep:
///
///     X ← embed(calibration windows)
///     for each block b:
///         Y_dense, statistics ← b(X)              teacher outputs and what the passes asked for
///         for each pass p of the stage:           cut, fit locally, verify
///         X ← b(X)                                the repaired block feeds the next one
///
/// Model-scope passes run on the whole model between sweeps. Memory holds the model, the calibration
/// inputs and teacher outputs of one block (two `[windows·length, hidden]` tensors; the next block's inputs
/// overwrite the inputs in place) and one block's intermediate values for a few windows at a time.
public final class Pipeline {
    /// A stage's constructed passes with their invocations.
    struct PlannedPass {
        let pass: AnyPass
        let invocation: PassInvocation
        /// The pass's `plan` result for the current stage.
        var modelFacts: [String: [Double]] = [:]
    }

    /// The recipe being run.
    public let recipe: Recipe
    let stages: [[PlannedPass]]

    /// Builds every pass of `recipe` from `registry` (throws `RecipeError` for unknown passes or bad options).
    public init(recipe: Recipe, registry: PassRegistry) throws {
        self.recipe = recipe
        stages = try recipe.stages.map { stage in
            try stage.passes.map { PlannedPass(pass: try registry.instantiate($0), invocation: $0) }
        }
    }

    /// Whether any pass needs calibration data.
    public var needsCalibration: Bool {
        stages.joined().contains { planned in
            switch planned.pass {
            case let .block(p): type(of: p).needsCalibration || planned.invocation.fit.method != .none
            case let .model(p): type(of: p).needsCalibration
            }
        }
    }

    /// Runs every stage on `model`, in place, and returns the per-pass reports.
    public func run(on model: inout Model, calibration: CalibrationSet?, options: RunOptions = RunOptions()) throws -> RunReport {
        var report = RunReport()
        let started = Date()
        let store = try options.checkpointDirectory.map {
            try CheckpointStore(directory: $0, fingerprint: options.fingerprint, resume: options.resume, log: options.log)
        }
        var resumePoint = options.resume ? try store?.resumePoint() : nil
        if let point = resumePoint {
            report.passes = point.reports
            if let archived = try store?.stageModel(point.stage - 1) { model.replaceWeights(with: archived) }
            options.log("resuming at stage \(point.stage + 1), block \(point.block)")
        }
        for (s, stage) in stages.enumerated() {
            if let point = resumePoint, s < point.stage { continue }
            options.log("stage \(s + 1)/\(stages.count): \(recipe.stages[s].name)")
            var blockPasses: [PlannedPass] = []
            func flushBlockPasses() throws {
                guard !blockPasses.isEmpty else { return }
                guard let calibration else {
                    // Without calibration data only passes that read none, unfitted, can run: block by block,
                    // without activations (so without block-output errors).
                    if let needy = blockPasses.first(where: { p in
                        guard case let .block(pass) = p.pass else { return false }
                        return type(of: pass).needsCalibration || p.invocation.fit.method != .none
                    }) { throw PipelineError.needsCalibration(pass: needy.invocation.name) }
                    try runBlocksWithoutCalibration(blockPasses, model: &model, report: &report, options: options)
                    blockPasses = []
                    return
                }
                try runBlockSweep(blockPasses, stage: s, model: &model, calibration: calibration, report: &report,
                                  options: options, store: store, resume: resumePoint?.stage == s ? resumePoint : nil)
                resumePoint = nil
                blockPasses = []
            }
            for planned in stage {
                switch planned.pass {
                case .block: blockPasses.append(planned)
                case let .model(pass):
                    try flushBlockPasses()
                    let name = planned.invocation.name, progress = options.progress
                    let context = ModelPassContext(targets: planned.invocation.selection, calibrationWindows: calibration?.windows ?? [],
                                                   seed: calibration?.seed ?? 0, fit: planned.invocation.fit, original: model,
                                                   windowsPerCall: options.windowsPerCall, log: options.log,
                                                   progress: { done, total, note in progress(done, total, "\(name): \(note)") })
                    let t = Date()
                    var r: PassReport
                    do { r = try pass.apply(to: &model, context: context) } catch let e as PipelineError { throw e } catch {
                        throw PipelineError.passFailed(pass: planned.invocation.name, block: nil, reason: "\(error)")
                    }
                    let seconds = Date().timeIntervalSince(t)
                    r.cutSeconds = seconds - (r.fitSeconds ?? 0)
                    try verify(model, pass: planned.invocation.name)
                    report.passes.append(r)
                    options.modelPassFinished(r, seconds)
                }
            }
            try flushBlockPasses()
            try store?.finishStage(s, model: model, reports: report.passes)
        }
        report.seconds = Date().timeIntervalSince(started)
        try store?.removeAll()
        return report
    }

    func verify(_ model: Model, pass: String) throws {
        do { try Verifier.verify(model) } catch var e as VerifierError {
            e.pass = pass
            throw e
        }
    }

    /// Applies calibration-free, unfitted block passes block by block (nothing to stream).
    func runBlocksWithoutCalibration(_ passes: [PlannedPass], model: inout Model, report: inout RunReport, options: RunOptions) throws {
        let blockCount = model.blocks.count
        let empty = CalibrationSet(windows: [[0, 0]])
        for i in 0..<blockCount {
            let blockStart = Date()
            var block = model.blocks[i]
            for p in passes {
                guard case let .block(pass) = p.pass, p.invocation.selection.selectsAnything(in: block, index: i) else { continue }
                let t0 = Date()
                var r: PassReport
                do { r = try pass.apply(to: &block, context: makeContext(i, blockCount, p, BlockStatistics(tokens: 0), nil, empty, log: options.log)) }
                catch let e as PipelineError { throw e } catch {
                    throw PipelineError.passFailed(pass: p.invocation.name, block: i, reason: "\(error)")
                }
                r.block = i
                r.cutSeconds = Date().timeIntervalSince(t0)
                r.fit = FitSpec.Method.none.rawValue
                try verifyBlock(block, index: i, hidden: model.config.hiddenSize, pass: p.invocation.name)
                report.passes.append(r)
            }
            model.blocks[i] = block
            options.progress(i + 1, blockCount, passes.map(\.invocation.name).joined(separator: "+"))
            options.blockFinished(i, report.passes.filter { $0.block == i }, Date().timeIntervalSince(blockStart))
        }
    }

    /// One streaming sweep over the blocks for the block passes of a stage.
    func runBlockSweep(_ passes: [PlannedPass], stage: Int, model: inout Model, calibration: CalibrationSet, report: inout RunReport,
                       options: RunOptions, store: CheckpointStore?, resume: ResumePoint?) throws {
        // A least-squares fit keeps a block's values over every window and releases them when the block ends; the next
        // block allocates the same sizes again. With room in the buffer pool for them the next block reuses those
        // buffers instead of faulting in fresh pages (about 0.8 s of a 12 s block at 32 × 2048 windows, measured).
        let keepsValues = passes.contains { $0.invocation.fit.method == .lstsq }
        try BufferPool.shared.withCapacity(atLeast: keepsValues ? Self.keptValuesPoolBytes : 0) {
            try sweepBlocks(passes, stage: stage, model: &model, calibration: calibration, report: &report, options: options,
                            store: store, resume: resume)
        }
    }

    /// The buffer pool's capacity during a sweep that keeps values: the default 256 MiB plus half of what `KeptValues`
    /// may hold, at most 2 GiB more.
    static var keptValuesPoolBytes: Int { (256 << 20) + min(KeptValues.defaultBudget / 2, 2 << 30) }

    /// `runBlockSweep`'s loop over the blocks.
    private func sweepBlocks(_ passes: [PlannedPass], stage: Int, model: inout Model, calibration: CalibrationSet, report: inout RunReport,
                             options: RunOptions, store: CheckpointStore?, resume: ResumePoint?) throws {
        let length = calibration.length
        let sweep = BlockSweep(windowsPerCall: options.windowsPerCall, length: length)
        let collector = StatisticsCollector(sweep: sweep)
        let passes = try plan(passes, model: model, calibration: calibration, sweep: sweep, log: options.log)
        var x: Tensor
        var first = 0
        // With a `teacher: model` fit, the dense model's own activations beside the cut model's (the model as the
        // stage received it), one block ahead of nothing: `modelInputs` are the inputs the dense model gives block i.
        let modelTeacher = passes.contains { $0.invocation.fit.method != .none && $0.invocation.fit.teacher == .model }
        let noTeacher = Tensor(zeros: [0, model.config.hiddenSize])     // advance without measuring an error
        var modelInputs: Tensor?
        if modelTeacher {
            var dense = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
            for i in 0..<(resume?.block ?? 0) { _ = try sweep.advance(model.blocks[i], index: i, inputs: &dense, teacher: noTeacher) }
            modelInputs = dense
        }
        if let resume, let stored = try store?.inputs(stage: stage) {
            for i in 0..<resume.block { model.blocks[i] = try store!.block(stage: stage, index: i) }
            x = stored
            first = resume.block
        } else {
            x = try ModelRunner(model: model).embed(Array(calibration.windows.joined()))
        }
        let blockCount = model.blocks.count
        for i in first..<blockCount {
            let blockStart = Date()
            let dense = model.blocks[i]
            let active = passes.filter { $0.invocation.selection.selectsAnything(in: dense, index: i) }
            // The dense model's outputs of this block (the model teacher), which are also its next inputs.
            var modelOutputs = modelInputs
            if modelOutputs != nil { _ = try sweep.advance(dense, index: i, inputs: &modelOutputs!, teacher: noTeacher) }
            defer { modelInputs = modelOutputs }
            if active.isEmpty {
                _ = try sweep.advance(dense, index: i, inputs: &x, teacher: noTeacher)
                try store?.finishBlock(stage: stage, index: i, block: dense, inputs: x, reports: report.passes)
                options.progress(i + 1, blockCount, "forward")
                if options.stopRequested() { throw PipelineError.interrupted(stage: stage, block: i) }
                continue
            }
            // What the first pass reads, and the dense Grams of every least-squares fit (later passes read
            // statistics of the block as the passes before them left it; `cut` collects those).
            var requests = analysisRequests(active[0], block: dense, index: i, blockCount: blockCount, calibration: calibration)
            // A least-squares fit refits every linear the passes before it changed, not only its own pass's targets:
            // the dense Grams of every linear any active pass may cut, and the dense block's values such a fit reads.
            var fitValues = Set<String>()
            if active.contains(where: { [.lstsq, .reform].contains($0.invocation.fit.method) }) {
                var linears = Set<String>()
                for p in active {
                    for (node, _) in p.invocation.selection.linears(in: dense, index: i) {
                        requests.append(InputGram(value: node.inputs[0]))
                        linears.insert(node.name)
                    }
                }
                fitValues = LeastSquaresFit.denseValuesRead(by: linears.sorted(), in: dense)
            }
            // The dense outputs of every window when a pass or a fit reads them; else of the first call's
            // windows only, for the block-error report.
            let readsTeacher = active.contains { p in
                guard case let .block(pass) = p.pass else { return false }
                return type(of: pass).readsDenseOutputs || p.invocation.fit.method != .none
            }
            // A least-squares fit against this block's teacher pairs the cut block with the dense one on the same inputs:
            // the dense block's values at the linears' inputs are kept from this sweep instead of computed again.
            let keptDense = modelOutputs == nil && active.contains(where: { $0.invocation.fit.method == .lstsq })
                ? KeptValues(windows: calibration.windows.count, length: length) : nil
            let (blockTeacher, statistics) = try collector.collect(dense, index: i, inputs: x, analyses: requests,
                                                                   teacherWindows: readsTeacher ? nil : sweep.windowsPerCall,
                                                                   keep: fitValues, keeping: keptDense)
            // What the fits match and the block errors are measured against: the dense block on these inputs, or
            // with a model teacher the dense model's outputs (from the dense model's inputs, `modelInputs`).
            let fitTeacher = modelOutputs.map { FitTeacher(inputs: modelInputs!, outputs: $0) }
            let teacher = fitTeacher?.outputs ?? blockTeacher
            let (block, resume) = try cut(dense, index: i, passes: active, blockCount: blockCount, hidden: model.config.hiddenSize,
                                          statistics: statistics, inputs: x, teacher: blockTeacher, model: fitTeacher, denseValues: keptDense,
                                          calibration: calibration, sweep: sweep, report: &report, options: options)
            keptDense?.removeAll()
            // The cut block's outputs replace its inputs in place (the passes' copies of the inputs are gone), computed
            // from the values its last fit kept where it kept them (the same bits as a run from the inputs).
            let forwardStart = Date()
            let finalError = try sweep.advance(block, index: i, inputs: &x, teacher: teacher, resumingFrom: resume)
            let last = report.passes.count - 1
            report.passes[last].forwardSeconds = Date().timeIntervalSince(forwardStart)
            if report.passes[last].errorAfterFit == nil { report.passes[last].errorAfterFit = finalError }
            if report.passes[last].fit == FitSpec.Method.none.rawValue { report.passes[last].errorAfterCut = finalError }
            if report.passes[last].fit == FitSpec.Method.regional.rawValue { report.passes[last].fitObjectiveAfter = finalError }
            model.blocks[i] = block
            try store?.finishBlock(stage: stage, index: i, block: block, inputs: x, reports: report.passes)
            options.progress(i + 1, blockCount, active.map(\.invocation.name).joined(separator: "+"))
            options.blockFinished(i, report.passes.filter { $0.block == i }, Date().timeIntervalSince(blockStart))
            if options.stopRequested() && i + 1 < blockCount { throw PipelineError.interrupted(stage: stage, block: i) }
        }
    }

    /// The dense model's side of a `teacher: model` fit for one block: the inputs the dense model gives the block
    /// and the block's outputs on them, over the same calibration windows as the cut model's inputs.
    struct FitTeacher {
        var inputs: Tensor
        var outputs: Tensor
    }

    /// Applies the active passes of a stage to `dense` (block `index`), each followed by its local fit and
    /// verification, appending one report per pass; returns the cut block. The passes read `teacher` (the dense
    /// block on `x`); the fits and the block errors read `model` when given (a model teacher), else `teacher`, and the
    /// least-squares fits read the dense block's values kept in `denseValues` (on `x`) where it holds them.
    /// The block error after every pass but the last is measured here; the caller measures the last while it
    /// computes the next block's inputs, resuming from the values the last pass's fit kept for it (`outputResume`).
    func cut(_ dense: Block, index i: Int, passes active: [PlannedPass], blockCount: Int, hidden: Int, statistics: BlockStatistics, inputs x: Tensor,
             teacher: Tensor, model: FitTeacher?, denseValues: KeptValues? = nil, calibration: CalibrationSet, sweep: BlockSweep,
             report: inout RunReport, options: RunOptions) throws -> (block: Block, outputResume: KeptValues?) {
        let activations = CalibrationActivations(inputs: x, teacher: teacher, windows: calibration.windows.count, length: calibration.length)
        let fitActivations = model.map { CalibrationActivations(inputs: x, teacher: $0.outputs, windows: calibration.windows.count, length: calibration.length) }
            ?? activations
        var block = dense, resume: KeptValues?
        // The dense block's error against a model teacher: what the blocks before it changed.
        var errorBefore = model.map { teacher.relativeError(to: $0.outputs) } ?? 0.0
        // The analyses of the block as it is now: a pass after the first reads them on the block the earlier passes
        // left, reusing every analysis whose values they did not change and computing the rest; the fits keep the
        // dense block's (`statistics`).
        let current = statistics.copy()
        var analysed = dense
        for (k, p) in active.enumerated() {
            guard case let .block(pass) = p.pass else { continue }
            if k > 0 {
                current.invalidate(changed: block.valuesChanged(from: analysed))
                analysed = block
                _ = try StatisticsCollector(sweep: sweep).collect(block, index: i, inputs: x, analyses: analysisRequests(p, block: block, index: i, blockCount: blockCount,
                                                                                                                 calibration: calibration),
                                                                  into: current, teacherWindows: 0)
            }
            let context = makeContext(i, blockCount, p, current, activations, calibration, log: options.log)
            let t0 = Date()
            var r: PassReport
            do { r = try pass.apply(to: &block, context: context) } catch let e as PipelineError { throw e } catch {
                throw PipelineError.passFailed(pass: p.invocation.name, block: i, reason: "\(error)")
            }
            r.block = i
            r.cutSeconds = Date().timeIntervalSince(t0)
            r.errorBefore = errorBefore
            try verifyBlock(block, index: i, hidden: hidden, pass: p.invocation.name)
            let t1 = Date()
            let fitted = try fit(&block, original: dense, index: i, invocation: p.invocation, statistics: statistics,
                                 activations: fitActivations, denseInputs: model?.inputs, denseValues: denseValues, sweep: sweep, seed: calibration.seed)
            r.fit = p.invocation.fit.method.rawValue
            r.errorAfterCut = fitted.errorAfterCut
            r.fitObjectiveBefore = fitted.objectiveBefore
            r.fitObjectiveAfter = fitted.objectiveAfter
            r.fitSeconds = Date().timeIntervalSince(t1)
            try verifyBlock(block, index: i, hidden: hidden, pass: p.invocation.name)
            if k < active.count - 1 {
                let error = try sweep.error(block, index: i, inputs: x, teacher: fitActivations.teacher)
                r.errorAfterFit = error
                if p.invocation.fit.method == .regional { r.fitObjectiveAfter = error }
                errorBefore = error
            } else {
                resume = fitted.outputResume
            }
            report.passes.append(r)
        }
        return (block, resume)
    }

    /// The analyses pass `p` asks for on `block`.
    func analysisRequests(_ p: PlannedPass, block: Block, index: Int, blockCount: Int, calibration: CalibrationSet) -> [any BlockAnalysis] {
        guard case let .block(pass) = p.pass else { return [] }
        return pass.requiredAnalyses(for: block, context: makeContext(index, blockCount, p, BlockStatistics(tokens: 0), nil, calibration))
    }

    func makeContext(_ i: Int, _ n: Int, _ p: PlannedPass, _ statistics: BlockStatistics, _ activations: CalibrationActivations?,
                     _ calibration: CalibrationSet, log: @escaping @Sendable (String) -> Void = { _ in }) -> BlockPassContext {
        BlockPassContext(blockIndex: i, blockCount: n, targets: p.invocation.selection, statistics: statistics,
                         calibration: activations ?? CalibrationActivations(inputs: Tensor(zeros: [0, 0]), teacher: Tensor(zeros: [0, 0]), windows: 0, length: calibration.length),
                         seed: calibration.seed, modelFacts: p.modelFacts, fit: p.invocation.fit, log: log)
    }

    /// Runs every block pass's `plan` on the model as the stage receives it (before any cut of the stage,
    /// so a resumed run plans the same), keeping each result for that pass's contexts.
    func plan(_ passes: [PlannedPass], model: Model, calibration: CalibrationSet, sweep: BlockSweep,
              log: @escaping @Sendable (String) -> Void) throws -> [PlannedPass] {
        try passes.map { p in
            guard case let .block(pass) = p.pass else { return p }
            var planned = p
            let context = PlanContext(model: model, calibration: calibration.windows, sweep: sweep, targets: p.invocation.selection,
                                      seed: calibration.seed, log: log)
            do { planned.modelFacts = try pass.plan(model: model, context: context) } catch let e as PipelineError { throw e } catch {
                throw PipelineError.passFailed(pass: p.invocation.name, block: nil, reason: "planning: \(error)")
            }
            return planned
        }
    }

    func verifyBlock(_ block: Block, index: Int, hidden: Int, pass: String) throws {
        do { try Verifier.verify(block, index: index, hiddenSize: hidden) } catch var e as VerifierError {
            e.pass = pass
            throw e
        }
    }

    /// The outcome of local fitting. A regional fit's objective after is the block error, which the caller
    /// measures on the fitted block.
    struct FitOutcome {
        var errorAfterCut: Double?
        var objectiveBefore: Double?
        var objectiveAfter: Double?
        /// The fitted block's values on the fit's windows from which its output follows, when the fit kept them.
        var outputResume: KeptValues?
    }

    /// Fits `block` (cut from `original`, the dense block) as the invocation's `fit` says, against
    /// `activations.teacher`; the dense block reads `denseInputs` when given (a model teacher), else the cut
    /// block's inputs, on which `denseValues` holds some of its values.
    func fit(_ block: inout Block, original: Block, index: Int, invocation: PassInvocation, statistics: BlockStatistics,
             activations: CalibrationActivations, denseInputs: Tensor?, denseValues: KeptValues? = nil, sweep: BlockSweep,
             seed: UInt64) throws -> FitOutcome {
        switch invocation.fit.method {
        case .none:
            return FitOutcome()
        case .lstsq:
            var fit = BlockLeastSquares(original: original, index: index, activations: activations, denseInputs: denseInputs,
                                        sweep: sweep, spec: invocation.fit, denseValues: denseValues)
            return try fit.fit(&block, statistics: statistics)
        case .regional:
            let before = try RegionalFit.fit(&block, index: index, calibration: activations, spec: invocation.fit, seed: seed, sweep: sweep)
            return FitOutcome(errorAfterCut: before, objectiveBefore: before)
        case .reform:
            // The dense Grams of every linear's input on the block's inputs (requested above for every selected linear).
            let names = Set(Reformation.targets(cut: block, dense: original).map(\.input))
            let grams = try Dictionary(uniqueKeysWithValues: names.map { ($0, try statistics.gram(of: $0)) })
            let (before, after) = try Reformation.fit(&block, dense: original, grams: grams, spec: invocation.fit)
            return FitOutcome(objectiveBefore: before, objectiveAfter: after)
        }
    }
}
