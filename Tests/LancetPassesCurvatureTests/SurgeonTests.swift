import Foundation
import Lancet
@testable import LancetPassesCurvature
import XCTest

/// The LLM Surgeon on tiny seeded models: K-FAC factors against their definitions, the OBS costs and updates against
/// the dense closed form, shots, and structured removal that verifies, runs and exports.
final class SurgeonTests: XCTestCase {
    static func model(blocks: Int = 2, seed: UInt64 = 17) -> Model {
        var sizes = TinyLlama.Sizes()
        sizes.blocks = blocks
        return TinyLlama.make(sizes, seed: seed)
    }

    static func windows(_ model: Model, count: Int, length: Int, seed: UInt64 = 2) -> [[Int32]] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<length).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) } }
    }

    /// The summed next-token NLL of `model` on `windows` (data labels).
    static func nll(_ model: Model, _ windows: [[Int32]]) throws -> Double {
        try ModelGradients(model: model).backward(windows: windows, normalizer: 1) { _ in }
    }

    /// Runs `surgeon` with `options` through the pipeline on a copy of `dense`.
    static func run(_ options: [(String, String)], fit: FitSpec = FitSpec(), on dense: Model, windows: [[Int32]]) throws -> (Model, PassReport) {
        let values = OptionValue.object(options.map { (key: $0.0, value: .scalar($0.1, quoted: false, location: nil), location: nil) })
        var model = dense
        let recipe = Recipe(stages: [Stage(name: "surgery", passes: [PassInvocation(name: "surgeon", options: values, fit: fit)])])
        let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: CalibrationSet(windows: windows, seed: 2))
        try Verifier.verify(model)
        return (model, try XCTUnwrap(report.passes.first))
    }

    // MARK: K-FAC factors

    /// A = (1/N) Σ xxᵀ of the linear's inputs, and G = (1/N) Σ g gᵀ with g = ∂(Σ NLL)/∂y_t measured by central finite
    /// differences: the output y_t of `mlp.gate` alone moves along e_i when W moves along e_i z_tᵀ, with z_t = Xᵀ(XXᵀ)⁻¹e_t
    /// (fewer tokens than inputs, so X has full row rank).
    func testFactorsEqualTheirDefinitions() throws {
        let model = Self.model(blocks: 1)
        let windows = Self.windows(model, count: 1, length: 6)
        let context = ModelPassContext.standalone(model: model, calibrationWindows: windows)
        let (store, _) = try KroneckerFactors.collect(model, nodes: [["mlp.gate"]], context: context, labels: .data, windows: 0..<1, windowsPerBatch: 1)
        let f = try XCTUnwrap(try store.factors(block: 0)["mlp.gate"])

        let tape = try BlockExecutor.forward(model.blocks[0], index: 0, input: try ModelRunner(model: model).embed(windows[0]),
                                             context: ExecutionContext(batch: 1, length: 6), keepValues: true)
        let x = try XCTUnwrap(tape.values["mlp_in"]), n = x.shape[0]
        let a = matmul(x, x, transposeA: true).scalars.map { Double($0) / Double(n) }
        XCTAssertLessThan(Self.relative(f.a.scalars.map(Double.init), a), 1e-5)

        let w = model.blocks[0].parameters["mlp.gate.weight"]!
        let (out, inputs) = (w.shape[0], w.shape[1])
        let z = matmul(x, try solveSPD(matmul(x, x, transposeB: true), Self.identity(n)), transposeA: true)   // [in, N]: X z_t = e_t
        var gradients = [[Double]](repeating: [Double](repeating: 0, count: out), count: n)
        let epsilon: Float = 1e-2
        for t in 0..<n {
            for i in 0..<out {
                var loss = [0.0, 0.0]
                for (k, sign) in [Float(1), -1].enumerated() {
                    var moved = model
                    var wt = w
                    wt.withUnsafeMutableBufferPointer { p in
                        z.withUnsafeBufferPointer { zp in for j in 0..<inputs { p[i * inputs + j] += sign * epsilon * zp[j * n + t] } }
                    }
                    moved.blocks[0].parameters["mlp.gate.weight"] = wt
                    loss[k] = try Self.nll(moved, windows)
                }
                gradients[t][i] = (loss[0] - loss[1]) / (2 * Double(epsilon))
            }
        }
        var g = [Double](repeating: 0, count: out * out)
        for t in 0..<n { for i in 0..<out { for j in 0..<out { g[i * out + j] += gradients[t][i] * gradients[t][j] / Double(n) } } }
        XCTAssertLessThan(Self.relative(f.g.scalars.map(Double.init), g), 2e-2)
        XCTAssertEqual(f.tokens, 6)
    }

    /// The factors summed over several backward batches (each added to the block's file on disk) equal one batch's.
    func testFactorsOverBatchesEqualOneBatch() throws {
        let model = Self.model(blocks: 2)
        let windows = Self.windows(model, count: 3, length: 8)
        let context = ModelPassContext.standalone(model: model, calibrationWindows: windows)
        let nodes = [["attn.q", "attn.k", "mlp.down"], ["mlp.gate"]]
        let one = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: .data, windows: 0..<3, windowsPerBatch: 3).store
        let three = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: .data, windows: 0..<3, windowsPerBatch: 1).store
        for b in 0..<2 {
            let (x, y) = (try one.factors(block: b), try three.factors(block: b))
            XCTAssertEqual(Set(x.keys), Set(nodes[b]))
            for (name, f) in x {
                XCTAssertLessThan(Self.relative(y[name]!.a.scalars.map(Double.init), f.a.scalars.map(Double.init)), 1e-5, name)
                XCTAssertLessThan(Self.relative(y[name]!.g.scalars.map(Double.init), f.g.scalars.map(Double.init)), 1e-4, name)
            }
        }
    }

    /// With `inputWindows`, A is the mean Gram of the linears' inputs over those windows (a forward), while G stays the
    /// gradient windows' own, as without them.
    func testInputWindowsGiveAFromTheirOwnForward() throws {
        let model = Self.model(blocks: 2)
        let windows = Self.windows(model, count: 5, length: 8)
        let context = ModelPassContext.standalone(model: model, calibrationWindows: windows)
        let nodes = [["attn.q", "mlp.down"], ["attn.o", "mlp.gate"]]
        let plain = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: .data, windows: 0..<2, windowsPerBatch: 1).store
        let wide = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: .data, windows: 0..<2, windowsPerBatch: 1,
                                                inputWindows: 0..<5).store
        let all = try KroneckerFactors.collect(model, nodes: nodes, context: context, labels: .data, windows: 0..<5, windowsPerBatch: 1).store
        XCTAssertEqual(wide.tokens, 16)
        XCTAssertEqual(wide.inputTokens, 40)
        for b in 0..<2 {
            let (p, w, a) = (try plain.factors(block: b), try wide.factors(block: b), try all.factors(block: b))
            XCTAssertEqual(Set(w.keys), Set(nodes[b]))
            for name in nodes[b] {
                XCTAssertLessThan(Self.relative(w[name]!.a.scalars.map(Double.init), a[name]!.a.scalars.map(Double.init)), 1e-5, name)
                XCTAssertGreaterThan(Self.relative(w[name]!.a.scalars.map(Double.init), p[name]!.a.scalars.map(Double.init)), 1e-3, name)
                XCTAssertLessThan(Self.relative(w[name]!.g.scalars.map(Double.init), p[name]!.g.scalars.map(Double.init)), 1e-6, name)
            }
        }
    }

    // MARK: OBS closed forms

    /// Costs and updates of single elements, element sets, row sets and column sets equal the dense OBS formulas with
    /// F⁻¹ = G⁻¹ ⊗ A⁻¹ written out: ΔL = ½ w_Qᵀ [F⁻¹]_QQ⁻¹ w_Q, Δθ = −F⁻¹ e_Q [F⁻¹]_QQ⁻¹ w_Q.
    func testCostsAndUpdatesMatchTheDenseClosedForm() throws {
        var generator = SeededGenerator(seed: 5)
        let (out, inputs) = (6, 5)
        let gx = Tensor.randomNormal(shape: [20, out], generator: &generator), ax = Tensor.randomNormal(shape: [20, inputs], generator: &generator)
        let factors = KroneckerFactors(a: gram(ax), g: gram(gx), tokens: 20)
        let curvature = try KroneckerCurvature(factors, dampG: 0.05, dampA: 0.02)
        XCTAssertLessThan(Self.relative(matmul(curvature.gInverse, factors.g.ridged(damping: 0.05)).scalars.map(Double.init), Self.identity(out).scalars.map(Double.init)), 1e-4)
        let w = Tensor.randomNormal(shape: [out, inputs], generator: &generator)
        let finv = Self.kronecker(curvature.gInverse, curvature.aInverse)    // [out·in, out·in]
        let theta = w.scalars.map(Double.init)

        func obs(_ q: [Int]) -> (cost: Double, weights: [Double]) {
            let m = q.count
            var sub = [Double](repeating: 0, count: m * m)
            for k in 0..<m { for l in 0..<m { sub[k * m + l] = finv[q[k]][q[l]] } }
            let lambda = Self.solve(sub, q.map { theta[$0] }, m)
            let cost = 0.5 * zip(q, lambda).reduce(0) { $0 + theta[$1.0] * $1.1 }
            let weights = theta.indices.map { p in theta[p] - zip(q, lambda).reduce(0) { $0 + finv[p][$1.0] * $1.1 } }
            return (cost, weights)
        }

        // One element.
        let q = 2 * inputs + 3
        let single = obs([q])
        XCTAssertEqual(Double(curvature.elementCosts(w).scalars[q]), single.cost, accuracy: 1e-4 * single.cost)
        var keep = [UInt8](repeating: 1, count: out * inputs)
        keep[q] = 0
        var updated = w
        try curvature.removeElements(&updated, mask: Mask(shape: w.shape, keep: keep), correlate: 1)
        XCTAssertLessThan(Self.relative(updated.scalars.map(Double.init), single.weights), 1e-4)
        XCTAssertEqual(updated.scalars[q], 0)

        // A correlated set across two rows, solved in one chunk.
        let set = [1, 3, inputs + 0, inputs + 4]
        keep = [UInt8](repeating: 1, count: out * inputs)
        for p in set { keep[p] = 0 }
        updated = w
        try curvature.removeElements(&updated, mask: Mask(shape: w.shape, keep: keep), correlate: 16)
        XCTAssertLessThan(Self.relative(updated.scalars.map(Double.init), obs(set).weights), 1e-3)

        // Rows {1, 4} and columns {0, 2} together.
        let rowSet = [1, 4].flatMap { r in (0..<inputs).map { r * inputs + $0 } }
        XCTAssertEqual(try curvature.rowSetCost(w, rows: [1, 4]), obs(rowSet).cost, accuracy: 1e-3 * obs(rowSet).cost)
        XCTAssertLessThan(Self.relative(try curvature.removingRows(w, rows: [1, 4]).scalars.map(Double.init), obs(rowSet).weights), 1e-3)
        let columnSet = (0..<out).flatMap { r in [0, 2].map { r * inputs + $0 } }
        XCTAssertEqual(try curvature.columnSetCost(w, columns: [0, 2]), obs(columnSet).cost, accuracy: 1e-3 * obs(columnSet).cost)
        XCTAssertLessThan(Self.relative(try curvature.removingColumns(w, columns: [0, 2]).scalars.map(Double.init), obs(columnSet).weights), 1e-3)
        // Single rows and columns.
        let rowCosts = curvature.rowCosts(w), columnCosts = curvature.columnCosts(w)
        for r in 0..<out { XCTAssertEqual(rowCosts[r], obs((0..<inputs).map { r * inputs + $0 }).cost, accuracy: 1e-3 * rowCosts[r]) }
        for c in 0..<inputs { XCTAssertEqual(columnCosts[c], obs((0..<out).map { $0 * inputs + c }).cost, accuracy: 1e-3 * columnCosts[c]) }
    }

    /// The global threshold drops exactly the cheapest elements and 2:4 drops the two cheapest of the cheapest groups.
    func testThresholdsPickTheCheapest() {
        let a = SurgeonElements.Costs(block: 0, node: "a", costs: Tensor(shape: [2, 4], [5, 1, 7, 3, 2, 8, 0.5, 9]))
        let b = SurgeonElements.Costs(block: 1, node: "b", costs: Tensor(shape: [1, 4], [4, 6, 0.1, 10]))
        let masks = SurgeonElements.unstructured([a, b], count: 4)
        XCTAssertEqual(masks[0].keep, [1, 0, 1, 1, 0, 1, 0, 1])
        XCTAssertEqual(masks[1].keep, [1, 1, 0, 1])
        let groups = SurgeonElements.semiStructured([a, b], count: 2)        // group costs 1 + 3, 0.5 + 2 | 0.1 + 4
        XCTAssertEqual(groups[0].keep, [1, 0, 1, 0, 0, 1, 0, 1])
        XCTAssertEqual(groups[1].keep, [1, 1, 1, 1])
        var values: [Float] = [9, 3, 7, 1, 5, 3, 8]
        XCTAssertEqual(SurgeonElements.kthSmallest(&values, 2), 3)
    }

    // MARK: The pass

    /// At the same target, more shots (the curvature recomputed on the pruned model) leave a calibration loss no higher.
    /// A random model's own predictions are near uniform and carry nothing of the text, so the curvature here is the
    /// empirical Fisher (`labels: data`), whose loss is the calibration loss measured.
    func testMoreShotsDoNotRaiseTheCalibrationLoss() throws {
        let dense = Self.model(blocks: 2)
        let windows = Self.windows(dense, count: 8, length: 16)
        for structure in ["unstructured", "rows+columns"] {
            var losses: [Double] = []
            for shots in [1, 4] {
                let (model, report) = try Self.run([("structure", structure), ("sparsity", "0.4"), ("shots", "\(shots)"), ("min_channels", "8"),
                                                    ("labels", "data")],
                                                   on: dense, windows: windows)
                XCTAssertEqual(report.metrics["shots"], Double(shots))
                XCTAssertGreaterThanOrEqual(report.metrics["sparsity"]!, 0.4 - 1e-9, structure)
                losses.append(try Self.nll(model, windows))
            }
            XCTAssertLessThanOrEqual(losses[1], losses[0], "\(structure): 4 shots \(losses[1]) vs 1 shot \(losses[0])")
        }
    }

    /// `allocation: uniform` prunes every targeted linear to the same share; `global` lets the shares differ.
    func testUniformAllocationGivesEveryLinearTheSameShare() throws {
        let dense = Self.model(blocks: 2)
        let windows = Self.windows(dense, count: 4, length: 16)
        var spread: [Double] = []
        for allocation in ["uniform", "global"] {
            let (model, _) = try Self.run([("structure", "unstructured"), ("sparsity", "0.5"), ("shots", "2"), ("allocation", allocation)],
                                          on: dense, windows: windows)
            let shares = model.blocks.flatMap { $0.masks.values.map(\.sparsity) }
            XCTAssertEqual(shares.count, 14)
            spread.append(shares.max()! - shares.min()!)
            if allocation == "uniform" { for share in shares { XCTAssertEqual(share, 0.5, accuracy: 1e-3) } }
        }
        XCTAssertGreaterThan(spread[1], 0.05)
    }

    /// The correlated update beats removal alone on the calibration loss, for elements and for structures.
    func testTheCorrelatedUpdateLowersTheLoss() throws {
        let dense = Self.model(blocks: 2)
        let windows = Self.windows(dense, count: 8, length: 16)
        for structure in ["unstructured", "rows+columns"] {
            let losses = try ["correlated", "none"].map { update in
                try Self.nll(Self.run([("structure", structure), ("sparsity", "0.4"), ("shots", "2"), ("update", update), ("min_channels", "8")],
                                      on: dense, windows: windows).0, windows)
            }
            XCTAssertLessThan(losses[0], losses[1], structure)
        }
    }

    /// rows+columns with a fit shrinks the blocks (GQA groups whole), verifies, runs, and exports as `deci` GGUF that
    /// loads back to the same logits.
    func testRowsAndColumnsRemovalVerifiesRunsAndExports() throws {
        let dense = Self.model(blocks: 3)
        let windows = Self.windows(dense, count: 6, length: 16)
        let (model, report) = try Self.run([("structure", "rows+columns"), ("sparsity", "0.35"), ("shots", "2"), ("min_channels", "8")],
                                           fit: FitSpec(method: .lstsq), on: dense, windows: windows)
        XCTAssertGreaterThanOrEqual(report.metrics["sparsity"]!, 0.35)
        XCTAssertNotNil(report.errorAfterFit)
        var shrunk = false
        for block in model.blocks {
            let a = try XCTUnwrap(LlamaBlock.attentionSizes(of: block))
            XCTAssertEqual(a.heads % a.kvHeads, 0)
            XCTAssertEqual(a.heads / a.kvHeads, 2, "query heads per KV head unchanged")
            shrunk = shrunk || a.kvHeads < 2 || LlamaBlock.ffnWidth(of: block)! < 96
            XCTAssertTrue(block.masks.isEmpty)
        }
        XCTAssertTrue(shrunk)
        XCTAssertLessThan(model.blocks.map(\.parameterCount).reduce(0, +), dense.blocks.map(\.parameterCount).reduce(0, +))
        let logits = try ModelRunner(model: model).logits(windows[0], context: ExecutionContext(batch: 1, length: 16))
        XCTAssertTrue(logits.scalars.allSatisfy(\.isFinite))

        let path = NSTemporaryDirectory() + "lancet-surgeon-\(UUID().uuidString).gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try model.save(to: path)
        let back = try ModelLoader.load(path)
        XCTAssertEqual(try ModelRunner(model: back).logits(windows[0], context: ExecutionContext(batch: 1, length: 16)), logits)
    }

    /// `channel_multiple` rounds every block's kept FFN width to a multiple (the global threshold leaves ragged widths).
    func testChannelMultipleRoundsTheWidths() throws {
        let dense = Self.model(blocks: 3)
        let windows = Self.windows(dense, count: 4, length: 16)
        var ragged = false
        for multiple in [1, 16] {
            let (model, report) = try Self.run([("structure", "rows+columns"), ("sparsity", "0.3"), ("shots", "2"), ("min_channels", "8"),
                                                ("attention", "false"), ("channel_multiple", "\(multiple)")], on: dense, windows: windows)
            let widths = model.blocks.map { LlamaBlock.ffnWidth(of: $0)! }
            if multiple == 1 { ragged = widths.contains { $0 % 16 != 0 } } else {
                XCTAssertTrue(widths.allSatisfy { $0 % 16 == 0 }, "\(widths)")
                XCTAssertEqual(report.metrics["sparsity"]!, 0.3, accuracy: 0.1, "the rounding moves the total by less than a multiple per block")
            }
        }
        XCTAssertTrue(ragged, "without rounding the global threshold leaves widths off the multiple (else this test shows nothing)")
    }

    /// Bad options are refused naming the option.
    func testOptionsAreChecked() {
        func refused(_ options: SurgeonPass.Options, _ key: String) {
            XCTAssertThrowsError(try SurgeonPass(options: options)) { XCTAssertEqual(($0 as? PassOptionError)?.option, key, "\($0)") }
        }
        var o = SurgeonPass.Options()
        o.structure = "diagonal"
        refused(o, "structure")
        o = SurgeonPass.Options()
        o.structure = "2:4"
        o.sparsity = 0.3
        refused(o, "sparsity")
        o = SurgeonPass.Options()
        o.shots = 0
        refused(o, "shots")
        o = SurgeonPass.Options()
        o.labels = "gold"
        refused(o, "labels")
        o = SurgeonPass.Options()
        o.fitLinears = "all"
        refused(o, "fit_linears")
        o = SurgeonPass.Options()
        o.inputWindows = 0
        refused(o, "input_windows")
        XCTAssertEqual(try SurgeonPass(options: SurgeonPass.Options()).sparsity, 0.2)
    }

    // MARK: Helpers

    static func relative(_ a: [Double], _ b: [Double]) -> Double {
        let d = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, n = b.reduce(0) { $0 + $1 * $1 }
        return (d / max(n, 1e-300)).squareRoot()
    }

    static func identity(_ n: Int) -> Tensor {
        var t = Tensor(zeros: [n, n])
        t.withUnsafeMutableBufferPointer { p in for i in 0..<n { p[i * n + i] = 1 } }
        return t
    }

    static func kronecker(_ g: Tensor, _ a: Tensor) -> [[Double]] {
        let (m, n) = (g.shape[0], a.shape[0])
        let gs = g.scalars, as_ = a.scalars
        return (0..<(m * n)).map { p in (0..<(m * n)).map { q in Double(gs[(p / n) * m + q / n]) * Double(as_[(p % n) * n + q % n]) } }
    }

    /// Solves the dense m×m system by Gaussian elimination with partial pivoting (Double).
    static func solve(_ a: [Double], _ b: [Double], _ m: Int) -> [Double] {
        var a = a, b = b
        for k in 0..<m {
            let p = (k..<m).max { abs(a[$0 * m + k]) < abs(a[$1 * m + k]) }!
            if p != k { for j in 0..<m { a.swapAt(k * m + j, p * m + j) }; b.swapAt(k, p) }
            for i in (k + 1)..<m {
                let f = a[i * m + k] / a[k * m + k]
                for j in k..<m { a[i * m + j] -= f * a[k * m + j] }
                b[i] -= f * b[k]
            }
        }
        var x = [Double](repeating: 0, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            x[i] = (b[i] - ((i + 1)..<m).reduce(0) { $0 + a[i * m + $1] * x[$1] }) / a[i * m + i]
        }
        return x
    }
}
