import LancetIR
import LancetRuntime
import LancetTensor

/// Everything a model pass sees: the recipe's settings for it, the calibration windows, and the services a
/// block pass gets from the pipeline, for any block or span of blocks of any model:
///
/// - **sweeps**: `sweep(_:blocks:visit:)` streams the calibration windows through a model a few windows at a
///   time, handing each block's inputs and outputs of that chunk to `visit` (memory: one chunk's activations);
/// - **hidden states**: `hiddenStates(enteringBlock:of:)` and `advance(_:through:of:)` give the inputs of any
///   block for every window (`[windows·length, hidden]`), computed chunk by chunk;
/// - **span teachers**: `spanOutputs(_:inputs:)` runs a span of the *original* blocks (the model as the pass
///   received it) on given inputs: the target a collapsed or replacement block is fitted to;
/// - **analyses**: `statistics(of:index:inputs:analyses:)` computes any `BlockAnalysis` on any block;
/// - **whole-model gradients**: `lossGradients(of:labels:…)` gives the language-model loss's gradient at every
///   block's output and at any value inside a block (`ModelGradients`);
/// - **fitting**: `fit(_:index:inputs:teacher:spec:)` fits a block to a teacher with the recipe's method
///   (`SpanFit`), and `error(of:index:inputs:teacher:)` measures it.
///
/// The context never keeps activations between calls: a pass holds the tensors it asks for, and drops them.
public final class ModelPassContext: @unchecked Sendable {
    /// What the recipe lets this pass cut (meaningful only for passes that declare `ModelPass.readsTargets`).
    public let targets: TargetSelection
    /// Calibration token windows (`[windows][length]`), for passes that run the model themselves.
    public let calibrationWindows: [[Int32]]
    /// The run's seed.
    public let seed: UInt64
    /// The recipe's local-fitting settings (used by `fit` when the pass gives none; meaningful only for passes
    /// that declare `ModelPass.fitsLocally`).
    public let fit: FitSpec
    /// Writes a progress or diagnostic line.
    public let log: @Sendable (String) -> Void
    /// Reports progress of a long phase: (done, total, what). `sweep` reports its chunks; a pass reports its own
    /// phases (the CLI shows a progress bar with an ETA per phase).
    public let progress: @Sendable (Int, Int, String) -> Void
    /// The model as this pass received it, before the pass changes anything: the teacher of span fits.
    public let original: Model
    /// Windows per forward call of the context's sweeps.
    public let windowsPerCall: Int

    init(targets: TargetSelection, calibrationWindows: [[Int32]], seed: UInt64, fit: FitSpec, original: Model, windowsPerCall: Int,
         log: @escaping @Sendable (String) -> Void, progress: @escaping @Sendable (Int, Int, String) -> Void) {
        self.targets = targets
        self.calibrationWindows = calibrationWindows
        self.seed = seed
        self.fit = fit
        self.original = original
        self.windowsPerCall = max(1, windowsPerCall)
        self.log = log
        self.progress = progress
    }

    /// A context for running a model pass outside the pipeline: in a pass's unit tests, in-tree or in a plugin
    /// package, with every service the pipeline gives. `model` is the model the pass will receive (the teacher
    /// of span fits); `calibrationWindows` must all have the same length.
    public static func standalone(model: Model, calibrationWindows: [[Int32]] = [], targets: TargetSelection = .all, seed: UInt64 = 0,
                                  fit: FitSpec = FitSpec(), windowsPerCall: Int = 4,
                                  log: @escaping @Sendable (String) -> Void = { _ in },
                                  progress: @escaping @Sendable (Int, Int, String) -> Void = { _, _, _ in }) -> ModelPassContext {
        precondition(Set(calibrationWindows.map(\.count)).count <= 1, "ModelPassContext.standalone: windows of different lengths")
        return ModelPassContext(targets: targets, calibrationWindows: calibrationWindows, seed: seed, fit: fit, original: model,
                                windowsPerCall: windowsPerCall, log: log, progress: progress)
    }

    /// Number of calibration windows.
    public var windowCount: Int { calibrationWindows.count }
    /// Tokens per calibration window.
    public var length: Int { calibrationWindows.first?.count ?? 0 }

    /// One block's inputs and outputs on one chunk of calibration windows, as a sweep visits them.
    public struct BlockChunk {
        /// The block's index in the swept model.
        public let block: Int
        /// The calibration windows of the chunk.
        public let windows: Range<Int>
        /// The block's inputs on those windows, `[windows·length, hidden]`.
        public let input: Tensor
        /// The block's outputs on those windows.
        public let output: Tensor
        /// The block values named in the sweep's `capture` on those windows (`[windows·length, width]` each).
        public let values: [String: Tensor]
    }

    /// Streams the calibration windows through `model` a chunk of `windowsPerCall` windows at a time: for every
    /// chunk, the embedding then blocks `blocks` (every block by default; the blocks before them run too, to
    /// give their inputs), handing `visit` each block's inputs and outputs on the chunk. Chunks come in window
    /// order and, within a chunk, blocks in model order. Memory holds one chunk's activations, never the whole
    /// calibration set's; the cost is one calibration forward through the blocks up to `blocks.upperBound`.
    /// `windows` limits the sweep to those calibration windows (default: all); `capture` names block values (a
    /// linear's input, say) each visit also receives.
    public func sweep(_ model: Model, blocks: Range<Int>? = nil, windows selection: Range<Int>? = nil, capture: Set<String> = [],
                      visit: (BlockChunk) throws -> Void) throws {
        let range = blocks ?? 0..<model.blocks.count
        let all = selection ?? 0..<windowCount
        try requireCalibration()
        precondition(range.lowerBound >= 0 && range.upperBound <= model.blocks.count, "sweep: blocks \(range) out of 0..<\(model.blocks.count)")
        precondition(all.lowerBound >= 0 && all.upperBound <= windowCount, "sweep: windows \(all) out of 0..<\(windowCount)")
        let runner = ModelRunner(model: model)
        var w = all.lowerBound
        while w < all.upperBound {
            let windows = w..<min(w + windowsPerCall, all.upperBound)
            var x = try runner.embed(Array(calibrationWindows[windows].joined()))
            let context = ExecutionContext(batch: windows.count, length: length)
            for i in 0..<range.upperBound {
                let run = try BlockExecutor.forward(model.blocks[i], index: i, input: x, context: context,
                                                    capture: range.contains(i) ? capture : [])
                if range.contains(i) { try visit(BlockChunk(block: i, windows: windows, input: x, output: run.output, values: run.values)) }
                x = run.output
            }
            w = windows.upperBound
            progress(w - all.lowerBound, all.count, "sweep")
        }
    }

    /// `sweep` turned around: block by block instead of chunk by chunk. The selected windows' hidden states (one
    /// `[windows·length, hidden]` tensor) run through block 0 a chunk of `windowsPerCall` windows at a time, then
    /// through block 1, and so on; `visit` sees every chunk of a block before any chunk of the next, and
    /// `finishBlock` is called after each block's last chunk. The chunks, and so every value a visit receives, are
    /// those `sweep` hands out; memory holds the selected windows' hidden states and one chunk's block values, so a
    /// caller that sums per block can keep one block's sums at a time.
    public func sweepByBlock(_ model: Model, windows selection: Range<Int>? = nil, capture: Set<String> = [],
                             visit: (BlockChunk) throws -> Void, finishBlock: (Int) throws -> Void) throws {
        let all = selection ?? 0..<windowCount
        try requireCalibration()
        precondition(all.lowerBound >= 0 && all.upperBound <= windowCount, "sweepByBlock: windows \(all) out of 0..<\(windowCount)")
        var states = try ModelRunner(model: model).embed(Array(calibrationWindows[all].joined()))
        let sweep = blockSweep
        for i in model.blocks.indices {
            try sweep.advance(model.blocks[i], index: i, inputs: &states, capture: capture) { calls, input, run in
                let windows = (all.lowerBound + calls.lowerBound)..<(all.lowerBound + calls.upperBound)
                try visit(BlockChunk(block: i, windows: windows, input: input, output: run.output, values: run.values))
            }
            try finishBlock(i)
            progress(i + 1, model.blocks.count, "sweep")
        }
    }

    /// The hidden states entering block `index` of `model` for every calibration window, `[windows·length,
    /// hidden]` (`index == model.blocks.count` gives the last block's outputs), computed chunk by chunk.
    public func hiddenStates(enteringBlock index: Int, of model: Model) throws -> Tensor {
        try requireCalibration()
        var x = try ModelRunner(model: model).embed(Array(calibrationWindows.joined()))
        try advance(&x, through: 0..<index, of: model)
        return x
    }

    /// Replaces `states` (the inputs of block `range.lowerBound` of `model`) by the outputs of block
    /// `range.upperBound − 1`, chunk by chunk and in place (no second activation tensor is held).
    public func advance(_ states: inout Tensor, through range: Range<Int>, of model: Model) throws {
        precondition(range.lowerBound >= 0 && range.upperBound <= model.blocks.count, "advance: blocks \(range) out of 0..<\(model.blocks.count)")
        let sweep = blockSweep
        let none = Tensor(zeros: [0, states.shape[1]])
        for i in range { _ = try sweep.advance(model.blocks[i], index: i, inputs: &states, teacher: none) }
    }

    /// The outputs of the original blocks `span` (the model as the pass received it) run in order on
    /// `inputs`: the span teacher that a block replacing the span is fitted to. A span of one block is that
    /// block's own dense output.
    public func spanOutputs(_ span: ClosedRange<Int>, inputs: Tensor) throws -> Tensor {
        precondition(span.lowerBound >= 0 && span.upperBound < original.blocks.count, "spanOutputs: span \(span) out of 0..<\(original.blocks.count)")
        var y = inputs
        try advance(&y, through: span.lowerBound..<(span.upperBound + 1), of: original)
        return y
    }

    /// The relative output error ‖block(inputs) − teacher‖² / ‖teacher‖² over every window the teacher holds.
    public func error(of block: Block, index: Int, inputs: Tensor, teacher: Tensor) throws -> Double {
        try blockSweep.error(block, index: index, inputs: inputs, teacher: teacher)
    }

    /// The calibration analyses of `block` (at `index`) on `inputs`, as a block pass would get them.
    public func statistics(of block: Block, index: Int, inputs: Tensor, analyses: [any BlockAnalysis]) throws -> BlockStatistics {
        try StatisticsCollector(sweep: blockSweep).collect(block, index: index, inputs: inputs, analyses: analyses, teacherWindows: 0).statistics
    }

    /// Fits `block` (at `index` in the model it will run in) so that its outputs on `inputs` match `teacher`
    /// (a span teacher from `spanOutputs`, or any target of the same shape), with `spec` or the recipe's fit
    /// settings. See `SpanFit` for what each method fits; `reform` fits a masked block against the original block at
    /// `index` (its dense twin). The outcome carries the error before and after.
    public func fit(_ block: inout Block, index: Int, inputs: Tensor, teacher: Tensor, spec: FitSpec? = nil) throws -> SpanFit.Outcome {
        let settings = spec ?? fit
        let activations = CalibrationActivations(inputs: inputs, teacher: teacher, windows: inputs.shape[0] / max(length, 1), length: length)
        return try SpanFit.fit(&block, index: index, calibration: activations, spec: settings, seed: seed, sweep: blockSweep,
                               dense: index < original.blocks.count ? original.blocks[index] : nil)
    }

    /// Fits every block of `model` in order with `spec` (the recipe's `fit:` by default) against the original block at
    /// the same index, on the calibration windows `windows` (default: all): each block on the inputs the fitted blocks
    /// before it produce, against the original block on those inputs (`teacher: block`) or on the original model's own
    /// inputs to it (`teacher: model`). For a model pass that cut blocks in place (same index, any shapes). With
    /// `lstsq`, `linears` says what is refitted: `.output`, the span fit of `fit(_:index:inputs:teacher:spec:)` (the
    /// linears that write the block's output), or `.every`, every linear against its twin in the original block, as a
    /// block pass's `lstsq` in the pipeline. Returns the mean relative block error (over `windows`) before and after.
    @discardableResult
    public func fitBlocks(_ model: inout Model, windows selection: Range<Int>? = nil, spec: FitSpec? = nil,
                          linears: BlockFitLinears = .output) throws -> (before: Double, after: Double) {
        let settings = spec ?? fit
        let all = selection ?? 0..<windowCount
        precondition(model.blocks.count == original.blocks.count, "fitBlocks: \(model.blocks.count) blocks against \(original.blocks.count) original ones")
        try requireCalibration()
        var x = try ModelRunner(model: model).embed(Array(calibrationWindows[all].joined()))
        var dense: Tensor? = settings.teacher == .model ? x : nil
        var (before, after) = (0.0, 0.0)
        for b in model.blocks.indices {
            if settings.method == .lstsq, linears == .every {
                let outcome = try fitEveryLinear(&model.blocks[b], index: b, inputs: x, denseInputs: dense, spec: settings)
                before += outcome.before
                // The fitted block's outputs replace its inputs, resumed from the values its last round kept; the
                // error of that run is the error after the fit.
                after += try blockSweep.advance(model.blocks[b], index: b, inputs: &x, teacher: outcome.teacher,
                                                resumingFrom: outcome.outputResume)
                if dense != nil { dense = outcome.teacher }
            } else {
                let teacher = try spanOutputs(b...b, inputs: dense ?? x)
                let outcome = try fit(&model.blocks[b], index: b, inputs: x, teacher: teacher, spec: settings)
                before += outcome.errorBefore
                after += outcome.errorAfter
                try advance(&x, through: b..<(b + 1), of: model)
                if dense != nil { dense = teacher }
            }
            progress(b + 1, model.blocks.count, "fit")
        }
        let n = Double(max(model.blocks.count, 1))
        return (before / n, after / n)
    }

    /// `fitBlocks`' per-linear least squares of `block` (at `index`, cut from the original block there) on `inputs`:
    /// the pipeline's block fit (`BlockLeastSquares`) against the original block on `denseInputs` (a model teacher) or
    /// on `inputs`. For a block teacher one run of the original block gives, as the pipeline's statistics sweep does,
    /// the teacher, the dense Grams and the dense values the fit reads (`LeastSquaresFit.denseValuesRead`, kept for the
    /// fit's paired runs). Returns the teacher, the relative block error before the fit over all of `inputs`' windows,
    /// and the fitted block's values its output follows from (`BlockLeastSquares.outputResume`).
    func fitEveryLinear(_ block: inout Block, index: Int, inputs: Tensor, denseInputs: Tensor?,
                        spec: FitSpec) throws -> (teacher: Tensor, before: Double, outputResume: KeptValues?) {
        let twin = original.blocks[index], windows = inputs.shape[0] / max(length, 1)
        let teacher: Tensor, statistics: BlockStatistics, kept: KeptValues?
        if let denseInputs {
            (teacher, statistics, kept) = (try spanOutputs(index...index, inputs: denseInputs), BlockStatistics(tokens: 0), nil)
        } else {
            let targets = LeastSquaresFit.targets(cut: block, dense: twin)
            let names = Set(targets.map(\.input))
            kept = KeptValues(windows: windows, length: length)
            (teacher, statistics) = try StatisticsCollector(sweep: blockSweep).collect(
                twin, index: index, inputs: inputs, analyses: names.sorted().map { InputGram(value: $0) },
                keep: LeastSquaresFit.denseValuesRead(by: targets.map(\.node), in: twin), keeping: kept)
        }
        let before = try blockSweep.error(block, index: index, inputs: inputs, teacher: teacher)
        let activations = CalibrationActivations(inputs: inputs, teacher: teacher, windows: windows, length: length)
        var fit = BlockLeastSquares(original: twin, index: index, activations: activations, denseInputs: denseInputs, sweep: blockSweep,
                                    spec: spec, denseValues: kept)
        let outcome = try fit.fit(&block, statistics: statistics)
        return (teacher, before, outcome.outputResume)
    }

    /// The whole-model loss gradient of `model` over the calibration windows (`ModelGradients`), `windowsPerBatch`
    /// windows per backward: the loss is the mean next-token NLL over every window's predictions, so the batches'
    /// gradients add up to the whole set's. `visit` sees every block of every batch, last block first, with the
    /// batch's window range; `capture` and `captureGradients` name the block values whose forward values and
    /// gradients it receives (for K-FAC: each linear's input and output). Memory: one batch's block boundaries and
    /// one block's tape. `windows` limits the loss to those calibration windows (default: all). Returns the mean NLL.
    @discardableResult
    public func lossGradients(of model: Model, labels: ModelGradients.Labels = .data, windows selection: Range<Int>? = nil,
                              windowsPerBatch: Int = 1, capture: Set<String> = [], captureGradients: Set<String> = [],
                              visit: (Range<Int>, ModelGradients.BlockGradient) throws -> Void) throws -> Double {
        try requireCalibration()
        let all = selection ?? 0..<windowCount
        precondition(!all.isEmpty && all.lowerBound >= 0 && all.upperBound <= windowCount, "lossGradients: windows \(all) out of 0..<\(windowCount)")
        let gradients = ModelGradients(model: model, labels: labels)
        let predictions = Double(all.count * (length - 1))
        var nll = 0.0
        var w = all.lowerBound
        while w < all.upperBound {
            let batch = w..<min(w + max(1, windowsPerBatch), all.upperBound)
            nll += try gradients.backward(windows: Array(calibrationWindows[batch]), firstWindow: w, normalizer: predictions,
                                          capture: capture, captureGradients: captureGradients) { try visit(batch, $0) }
            w = batch.upperBound
            progress(w - all.lowerBound, all.count, "gradients")
        }
        return nll / predictions
    }

    var blockSweep: BlockSweep { BlockSweep(windowsPerCall: windowsPerCall, length: length) }

    func requireCalibration() throws {
        guard windowCount > 0, length > 0 else { throw PipelineError.missingStatistic("calibration windows (the recipe has no calibration data)") }
    }
}
