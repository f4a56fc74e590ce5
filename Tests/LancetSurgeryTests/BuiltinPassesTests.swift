import Lancet
import XCTest

/// A pass whose option name collides with the pass entry's `fit`.
struct FakeReservedOption: BlockPass {
    struct Options: Codable, Sendable { var fit = "x" }
    static let name = "fake-reserved"
    static let summary = "Test pass with a reserved option name."
    static let defaultOptions = Options()
    init(options: Options) throws {}
    func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
}

final class BuiltinPassesTests: XCTestCase {
    func testTheRegistryConcatenatesTablesAndRejectsADuplicateName() throws {
        let registry = try BuiltinPasses.registry(extra: [[FakePrune.self], [FakeRemove.self]])
        XCTAssertEqual(registry.all.map(\.name).filter { $0.hasPrefix("fake-") }, ["fake-prune", "fake-remove"])
        XCTAssertThrowsError(try BuiltinPasses.registry(extra: [[FakePrune.self], [FakePrune.self]])) { error in
            XCTAssertTrue("\(error)".contains("'fake-prune' from built-in is already registered"), "\(error)")
        }
    }

    func testEveryBuiltinTableRegisters() throws {
        XCTAssertNoThrow(try BuiltinPasses.registry())
    }

    func testAnOptionNamedLikeAPassEntryKeyIsRejectedAtRegistration() {
        XCTAssertThrowsError(try BuiltinPasses.registry(extra: [[FakeReservedOption.self]])) { error in
            XCTAssertTrue("\(error)".contains("has an option named 'fit'"), "\(error)")
        }
    }

    func testPassesAreDataFreeUnlessTheyDeclareCalibration() throws {
        let registry = try testRegistry()
        XCTAssertEqual(registry.descriptor("fake-prune")?.needsCalibration, false)
        XCTAssertEqual(registry.descriptor("fake-calibrated")?.needsCalibration, true)
        XCTAssertEqual(registry.descriptor("fake-prune")?.options.map(\.key), ["pattern", "sparsity"])
        XCTAssertEqual(registry.descriptor("fake-prune")?.options.map(\.defaultValue), ["unstructured", "0.5"])
    }
}
