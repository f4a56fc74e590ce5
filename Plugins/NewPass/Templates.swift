/// The files `new-pass` writes. The pass masks the entries of each targeted linear whose magnitude is at most
/// `threshold` (0 by default, which masks only exact zeros): trivial, but a complete, valid block pass to edit.
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
}
