/// The files `new-pass` writes. The block pass (`--scope block`, the default) masks the entries of each targeted
/// linear whose magnitude is at most `threshold` (0 by default, which masks only exact zeros); the model pass
/// (`--scope model`) measures each block's relative output change and removes the blocks below `remove_below`
/// (0 by default: none). Trivial, but complete, valid passes to edit.
enum Templates {
    /// `Sources/LancetPasses<Family>/<Type>.swift`.
    static func pass(_ name: PassName) -> String {
        """
        import LancetIR
        import LancetSurgery

        /// TODO: say what `\(name.key)` cuts and why, then replace the body of `apply`.
        ///
        /// As generated it masks the entries of each targeted linear whose magnitude is at most `threshold`.
        ///
        /// ```yaml
        /// stages:
        ///   - passes:
        ///       - \(name.key):
        ///           threshold: 0.001
        ///         targets: ["blocks.*.mlp.*"]
        /// ```
        public struct \(name.typeName): BlockPass {
            /// The options; every key has a default.
            public struct Options: Codable, Sendable, Equatable {
                /// Entries with magnitude at most this are masked (≥ 0).
                public var threshold: Double

                /// Options with defaults.
                public init(threshold: Double = 0) {
                    self.threshold = threshold
                }
            }

            public static let name = "\(name.key)"
            public static let summary = "masks entries of each targeted linear with magnitude at most a threshold"
            public static var defaultOptions: Options { Options() }
            public static var optionHelp: [String: String] {
                ["threshold": "entries with magnitude at most this are masked (≥ 0)"]
            }

            /// The validated options.
            public let options: Options

            /// A pass; throws when an option is out of range.
            public init(options: Options) throws {
                guard options.threshold >= 0, options.threshold.isFinite else {
                    throw PassOptionError("threshold", "must be a finite number ≥ 0, got \\(options.threshold)")
                }
                self.options = options
            }

            public func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport {
                var targeted = 0, pruned = 0
                for (_, op) in context.linears(in: block) {
                    guard let name = op.weight, let weight = block.parameters[name] else { continue }
                    let limit = Float(options.threshold)
                    var mask = weight.withUnsafeBufferPointer { w in
                        Mask(shape: weight.shape, keep: w.map { abs($0) > limit ? 1 : 0 })
                    }
                    if let earlier = block.masks[name] { mask = mask.intersection(earlier) }
                    block.setMasked(name, weight: weight, mask: mask)
                    targeted += weight.count
                    pruned += mask.keep.reduce(0) { $0 + (1 - Int($1)) }
                }
                return PassReport(pass: Self.name, block: context.blockIndex, metrics: [
                    "sparsity": targeted == 0 ? 0 : Double(pruned) / Double(targeted),
                    "pruned_parameters": Double(pruned),
                ])
            }
        }

        """
    }

    /// `Sources/LancetPasses<Family>/<Family>Passes.swift`, for a new family.
    static func registration(_ family: PassFamily, first name: PassName) -> String {
        """
        import LancetSurgery

        /// The \(family.name) family's registration table; the families' tables are concatenated in one place.
        public enum \(family.table) {
            /// Every pass of the family.
            public static let all: [any SurgeryPass.Type] = [
                \(name.typeName).self,
            ]
        }

        """
    }

    /// `Tests/LancetPasses<Family>Tests/<Type>Tests.swift`.
    static func test(_ name: PassName, family: PassFamily) -> String {
        """
        import LancetIR
        import \(family.target)
        import LancetSurgery
        import XCTest

        final class \(name.typeName)Tests: XCTestCase {
            func testIsInTheFamilyTableAsABlockPass() throws {
                XCTAssertTrue(\(family.table).all.contains { ObjectIdentifier($0) == ObjectIdentifier(\(name.typeName).self) })
                let registry = try PassRegistry(\(family.table).all)
                let descriptor = try XCTUnwrap(registry.descriptor("\(name.key)"))
                XCTAssertEqual(descriptor.scope, "block")
                XCTAssertEqual(descriptor.options.map(\\.key), ["threshold"])
            }

            func testRejectsANegativeThreshold() {
                XCTAssertThrowsError(try \(name.typeName)(options: .init(threshold: -1)))
            }

            func testMasksSmallEntriesOfTargetedLinearsAndTheBlockVerifies() throws {
                var model = TinyLlama.make()
                let pass = try \(name.typeName)(options: .init(threshold: 0.05))
                let targets = TargetSelection(targets: ["blocks.*.mlp.*"], ignore: [])
                let context = BlockPassContext.standalone(blockIndex: 0, blockCount: model.blocks.count, targets: targets)
                let report = try pass.apply(to: &model.blocks[0], context: context)
                try Verifier.verify(model)
                XCTAssertEqual(Set(model.blocks[0].masks.keys), ["mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"])
                XCTAssertGreaterThan(report.metrics["sparsity"] ?? 0, 0)
                XCTAssertLessThan(report.metrics["sparsity"] ?? 1, 1)
            }
        }

        """
    }

    /// `Sources/LancetPasses<Family>/<Type>.swift` for `--scope model`: a `ModelPass` that measures each block's
    /// relative output change with one calibration sweep, reports it, and removes the blocks below `remove_below`
    /// (0 by default: none; never every block), measuring what the cut cost with the hidden-state service.
    static func modelPass(_ name: PassName) -> String {
        """
        import LancetIR
        import LancetSurgery
        import LancetTensor

        /// TODO: say what `\(name.key)` does to the model and why, then replace the body of `apply`.
        ///
        /// As generated it measures how much each block changes the residual stream on the calibration windows — the
        /// relative output change ‖y − x‖² / ‖x‖² of the block's input x and output y over every token — with one
        /// streamed sweep, and reports it as the metrics `change.<i>`. It removes nothing unless `remove_below` asks:
        /// then the blocks whose change is below it go (never every block: the one of largest change stays), and
        /// `errorAfterCut` is the relative error of the cut model's last hidden states against the model it received.
        ///
        /// ```yaml
        /// stages:
        ///   - passes:
        ///       - \(name.key):
        ///           remove_below: 0.05
        /// ```
        public struct \(name.typeName): ModelPass {
            /// The options; every key has a default.
            public struct Options: Codable, Sendable, Equatable {
                /// Blocks whose relative output change is below this are removed, never all (≥ 0; 0 removes none).
                public var removeBelow: Double

                /// Recipe keys are the snake_case names of the properties: a multi-word property needs its key here.
                enum CodingKeys: String, CodingKey {
                    case removeBelow = "remove_below"
                }

                /// Options with defaults.
                public init(removeBelow: Double = 0) {
                    self.removeBelow = removeBelow
                }
            }

            public static let name = "\(name.key)"
            public static let summary = "measures each block's relative output change on calibration data and removes the blocks below a threshold"
            public static var defaultOptions: Options { Options() }
            public static var optionHelp: [String: String] {
                ["remove_below": "blocks whose relative output change is below this are removed, never all (≥ 0; 0 removes none)"]
            }
            /// The pass fits nothing, so the recipe's `fit:` is refused on it; say `true` when `apply` fits with
            /// `context.fit(&block, index:, inputs:, teacher:)` and the recipe's settings.
            public static var fitsLocally: Bool { false }
            /// The pass reads no `targets:`/`ignore:`, so the recipe's are refused on it; say `true` when `apply`
            /// reads `context.targets`.
            public static var readsTargets: Bool { false }

            /// The validated options.
            public let options: Options

            /// A pass; throws when an option is out of range.
            public init(options: Options) throws {
                guard options.removeBelow >= 0, options.removeBelow.isFinite else {
                    throw PassOptionError("remove_below", "must be a finite number ≥ 0, got \\(options.removeBelow)")
                }
                self.options = options
            }

            public func apply(to model: inout Model, context: ModelPassContext) throws -> PassReport {
                let blockCount = model.blocks.count
                // 1. One streamed calibration sweep: every block's inputs and outputs, a chunk of windows at a time.
                var changes = [Double](repeating: 0, count: blockCount), norms = [Double](repeating: 0, count: blockCount)
                try context.sweep(model) { chunk in
                    let (difference, reference) = Self.squaredNorms(chunk.output, against: chunk.input)
                    changes[chunk.block] += difference
                    norms[chunk.block] += reference
                }
                let change = zip(changes, norms).map { $0 / max($1, 1e-30) }

                // 2. The cut: the blocks whose change is below the threshold, but never all of them.
                var removed = change.indices.filter { change[$0] < options.removeBelow }
                if removed.count == blockCount, let largest = change.indices.max(by: { change[$0] < change[$1] }) {
                    removed.removeAll { $0 == largest }
                }
                var report = PassReport(pass: Self.name, metrics: ["blocks_removed": Double(removed.count)])
                for (i, c) in change.enumerated() { report.metrics["change.\\(i)"] = c }
                report.notes.append("removed blocks " + (removed.isEmpty ? "none" : removed.map(String.init).joined(separator: ", ")))
                guard !removed.isEmpty else {
                    report.errorAfterCut = 0
                    return report
                }
                model.blocks = model.blocks.indices.filter { !removed.contains($0) }.map { model.blocks[$0] }

                // 3. What the cut cost: the cut model's last hidden states against those of the model as the pass
                //    received it (`context.original`), on every calibration window (two activation tensors).
                let after = try context.hiddenStates(enteringBlock: model.blocks.count, of: model)
                let before = try context.hiddenStates(enteringBlock: blockCount, of: context.original)
                let (difference, reference) = Self.squaredNorms(after, against: before)
                report.errorAfterCut = difference / max(reference, 1e-30)
                return report
            }

            /// ‖a − b‖² and ‖b‖² over every entry of two tensors of one shape.
            static func squaredNorms(_ a: Tensor, against b: Tensor) -> (difference: Double, reference: Double) {
                precondition(a.shape == b.shape, "squaredNorms: shapes \\(a.shape) and \\(b.shape)")
                var difference = 0.0, reference = 0.0
                a.withUnsafeBufferPointer { x in
                    b.withUnsafeBufferPointer { y in
                        for k in 0..<x.count {
                            let d = Double(x[k]) - Double(y[k])
                            difference += d * d
                            reference += Double(y[k]) * Double(y[k])
                        }
                    }
                }
                return (difference, reference)
            }
        }

        """
    }

    /// `Tests/LancetPasses<Family>Tests/<Type>Tests.swift` for `--scope model`: the pass runs through
    /// `ModelPassContext.standalone` on a TinyLlama model with seeded random token windows.
    static func modelTest(_ name: PassName, family: PassFamily) -> String {
        """
        import LancetIR
        import \(family.target)
        import LancetSurgery
        import LancetTensor
        import XCTest

        final class \(name.typeName)Tests: XCTestCase {
            /// A 4-block TinyLlama and a standalone context (every service of the pipeline) on 6 seeded random
            /// windows of 16 token ids.
            static func setUp() -> (Model, ModelPassContext) {
                var sizes = TinyLlama.Sizes()
                sizes.blocks = 4
                let model = TinyLlama.make(sizes, seed: 3)
                var g = SeededGenerator(seed: 1)
                let windows = (0..<6).map { _ in (0..<16).map { _ in Int32(g.nextIndex(below: model.config.vocabularySize)) } }
                return (model, .standalone(model: model, calibrationWindows: windows, windowsPerCall: 2))
            }

            func testIsInTheFamilyTableAsAModelPass() throws {
                XCTAssertTrue(\(family.table).all.contains { ObjectIdentifier($0) == ObjectIdentifier(\(name.typeName).self) })
                let registry = try PassRegistry(\(family.table).all)
                let descriptor = try XCTUnwrap(registry.descriptor("\(name.key)"))
                XCTAssertEqual(descriptor.scope, "model")
                XCTAssertEqual(descriptor.options.map(\\.key), ["remove_below"])
                XCTAssertTrue(descriptor.needsCalibration)
                XCTAssertFalse(descriptor.fitsLocally)
                XCTAssertFalse(descriptor.readsTargets)
            }

            func testRejectsANegativeOrNonFiniteThreshold() {
                XCTAssertThrowsError(try \(name.typeName)(options: .init(removeBelow: -1)))
                XCTAssertThrowsError(try \(name.typeName)(options: .init(removeBelow: .nan)))
            }

            func testByDefaultMeasuresEveryBlockAndRemovesNothing() throws {
                let (received, context) = Self.setUp()
                var model = received
                let report = try \(name.typeName)(options: .init()).apply(to: &model, context: context)
                try Verifier.verify(model)
                XCTAssertEqual(model.blocks.count, 4)
                for (block, original) in zip(model.blocks, context.original.blocks) {
                    XCTAssertEqual(block.parameters, original.parameters)
                }
                XCTAssertEqual(report.metrics["blocks_removed"], 0)
                XCTAssertEqual(report.errorAfterCut, 0)
                for i in 0..<4 {
                    let change = try XCTUnwrap(report.metrics["change.\\(i)"], "change.\\(i)")
                    XCTAssertTrue(change.isFinite && change > 0, "change.\\(i) = \\(change)")
                }
            }

            func testRemovesTheBlocksBelowTheThresholdButNeverAll() throws {
                let (received, context) = Self.setUp()
                var model = received
                let measured = try \(name.typeName)(options: .init()).apply(to: &model, context: context)
                let change = (0..<4).map { measured.metrics["change.\\($0)"]! }
                let order = change.indices.sorted { change[$0] < change[$1] }

                // Between the second and third smallest change: the two flattest blocks go, the others keep their order.
                let threshold = (change[order[1]] + change[order[2]]) / 2
                let report = try \(name.typeName)(options: .init(removeBelow: threshold)).apply(to: &model, context: context)
                try Verifier.verify(model)
                XCTAssertEqual(report.metrics["blocks_removed"], 2)
                let kept = order[2...].sorted()
                XCTAssertEqual(model.blocks.map(\\.parameters), kept.map { context.original.blocks[$0].parameters })
                for i in 0..<4 { XCTAssertEqual(report.metrics["change.\\(i)"], change[i], "change.\\(i)") }
                let error = try XCTUnwrap(report.errorAfterCut)
                XCTAssertTrue(error.isFinite && error > 0, "error after cut \\(error)")

                // A threshold above every change keeps the block of largest change.
                var all = context.original
                let everything = try \(name.typeName)(options: .init(removeBelow: 1e30)).apply(to: &all, context: context)
                try Verifier.verify(all)
                XCTAssertEqual(everything.metrics["blocks_removed"], 3)
                XCTAssertEqual(all.blocks.map(\\.parameters), [context.original.blocks[order[3]].parameters])
            }
        }

        """
    }
}
