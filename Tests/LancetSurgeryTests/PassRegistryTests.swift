import Lancet
import XCTest

/// Registration is all-or-nothing, so a plugin whose table clashes leaves the registry as it was.
final class PassRegistryTests: XCTestCase {
    private struct Keep: BlockPass {
        struct Options: Codable, Sendable {}
        static let name = "keep"
        static let summary = "does nothing"
        static var defaultOptions: Options { Options() }
        init(options: Options) {}
        func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
    }

    private struct Other: BlockPass {
        struct Options: Codable, Sendable {}
        static let name = "other"
        static let summary = "does nothing either"
        static var defaultOptions: Options { Options() }
        init(options: Options) {}
        func apply(to block: inout Block, context: BlockPassContext) throws -> PassReport { PassReport(pass: Self.name) }
    }

    func testClashingTableRegistersNothing() throws {
        let registry = try PassRegistry([Keep.self])
        XCTAssertThrowsError(try registry.register([Other.self, Keep.self], origin: "/p/libClash.so")) { error in
            XCTAssertEqual("\(error)", "pass registry: pass 'keep' from /p/libClash.so is already registered (from built-in)")
        }
        XCTAssertEqual(registry.all.map(\.name), ["keep"])
        XCTAssertThrowsError(try PassRegistry([Other.self, Other.self]))
    }
}
