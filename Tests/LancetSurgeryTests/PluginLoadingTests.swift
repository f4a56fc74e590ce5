import Foundation
import Lancet
@testable import LancetSurgery
import XCTest

/// Loads the real out-of-tree example plugin (built by `ExamplePluginBuild`) into this test process, which is
/// linked like `lancet` (exporting its symbols), and checks the failure modes of `PluginLoader`.
final class PluginLoadingTests: XCTestCase {
    private func examplePlugin() throws -> String {
        #if !os(Linux)
        throw XCTSkip("plugin loading is implemented and tested on Linux")
        #else
        return try ExamplePluginBuild.library.get()
        #endif
    }

    private func option(_ key: String, _ value: String) -> OptionValue {
        .object([(key: key, value: .scalar(value, quoted: false, location: nil), location: nil)])
    }

    func testExamplePluginPassIsTheHostsBlockPassAndCutsABlock() throws {
        let path = try examplePlugin()
        let registry = PassRegistry()
        let info = try PluginLoader.load(path: path, into: registry)
        XCTAssertEqual(info, PluginInfo(path: path, name: "example-pass", version: "1.0.0", apiVersion: PluginAPI.version,
                                        passes: ["random-prune", "shortgpt-remove"], ops: ["prompt-channel-gate"]))

        let descriptor = try XCTUnwrap(registry.descriptor("random-prune"))
        XCTAssertEqual(descriptor.origin, path)
        XCTAssertEqual(descriptor.scope, "block")
        XCTAssertEqual(descriptor.options, [OptionDescriptor(key: "fraction", type: "number", defaultValue: "0.5",
                                                              help: "fraction of each targeted weight's entries to mask, in [0, 1)")])

        // The registry's constructor casts the plugin's value with `as? any BlockPass`.
        guard case let .block(pass) = try registry.instantiate(PassInvocation(name: "random-prune", options: option("fraction", "0.25"))) else {
            return XCTFail("random-prune was not constructed as a block pass")
        }
        XCTAssertTrue(type(of: pass) is any BlockPass.Type)
        XCTAssertTrue((pass as Any) is any SurgeryPass)
        XCTAssertEqual(String(describing: type(of: pass)), "RandomPrune")

        // It runs on a TinyLlama block against the host's IR types, and the block still verifies.
        var model = TinyLlama.make()
        let targets = TargetSelection(targets: ["blocks.*.mlp.*"], ignore: [])
        let context = BlockPassContext.standalone(blockIndex: 1, blockCount: model.blocks.count, targets: targets, seed: 7)
        XCTAssertTrue(pass.requiredAnalyses(for: model.blocks[1], context: context).isEmpty)
        let report = try pass.apply(to: &model.blocks[1], context: context)
        try Verifier.verify(model.blocks[1], index: 1, hiddenSize: model.config.hiddenSize)
        try Verifier.verify(model)

        XCTAssertEqual(report.pass, "random-prune")
        XCTAssertEqual(report.block, 1)
        XCTAssertEqual(Set(model.blocks[1].masks.keys), ["mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"])
        XCTAssertTrue(model.blocks[0].masks.isEmpty)
        for (name, mask) in model.blocks[1].masks {
            XCTAssertEqual(mask.sparsity, 0.25, accuracy: 1e-9, name)
            let weight = try XCTUnwrap(model.blocks[1].parameters[name])
            weight.withUnsafeBufferPointer { w in
                XCTAssertTrue(zip(w, mask.keep).allSatisfy { $1 == 1 || $0 == 0 }, "\(name): pruned entries are not zero")
            }
        }
        let targeted = 3 * 48 * 96
        XCTAssertEqual(report.metrics["pruned_parameters"], Double(targeted / 4))
        XCTAssertEqual(report.metrics["sparsity"] ?? -1, 0.25, accuracy: 1e-9)

        // Seeded: the same seed gives the same masks.
        var again = TinyLlama.make()
        _ = try pass.apply(to: &again.blocks[1], context: context)
        XCTAssertEqual(again.blocks[1].masks, model.blocks[1].masks)

        // Options are checked by the plugin's own init, and the error is located by the host.
        XCTAssertThrowsError(try registry.instantiate(PassInvocation(name: "random-prune", options: option("fraction", "1.5")))) { error in
            XCTAssertTrue("\(error)".contains("random-prune.fraction: must be in [0, 1), got 1.5"), "\(error)")
        }

        // Loading it again into the same registry is a registration failure naming the plugin and the pass.
        XCTAssertThrowsError(try PluginLoader.load(path: path, into: registry)) { error in
            guard case PluginError.registrationFailed = error else { return XCTFail("\(error)") }
            XCTAssertEqual("\(error)", "plugin \(path): registering its passes failed: pass 'random-prune' from \(path) is already "
                + "registered (from \(path))")
        }
        // Into a fresh registry it loads again (the library stays loaded; dlopen hands back the same handle).
        XCTAssertEqual(try PluginLoader.load(path: path, into: PassRegistry()).passes, ["random-prune", "shortgpt-remove"])
    }

    func testEveryLancetReferenceOfThePluginBindsToTheHost() throws {
        let path = try examplePlugin()
        let imports = try XCTUnwrap(ELFImports.undefinedSymbols(inFileAt: path))
        // The plugin leaves Lancet undefined (it links the dynamic product) …
        XCTAssertTrue(imports.contains("$s13LancetSurgery16PluginDefinitionCMa"), "\(imports.filter { $0.contains("Lancet") })")
        XCTAssertTrue(imports.contains("$s8LancetIR4MaskV5shape4keepACSaySiG_Says5UInt8VGtcfC"))
        // … and this process, linked with --export-dynamic like `lancet`, provides every one of those symbols.
        let lancetImports = imports.filter { $0.hasPrefix("$s") && $0.contains("Lancet") }
        XCTAssertFalse(lancetImports.isEmpty)
        XCTAssertEqual(lancetImports.filter { dlsym(nil, $0) == nil }, [])
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try PluginLoader.load(path: "/nonexistent/libNothing.so", into: PassRegistry())) { error in
            XCTAssertEqual(error as? PluginError, .fileNotFound(path: "/nonexistent/libNothing.so"))
            XCTAssertEqual("\(error)", "plugin /nonexistent/libNothing.so: no such file (plugins load only from an explicit path)")
        }
        XCTAssertThrowsError(try PluginLoader.load(path: "", into: PassRegistry()))
    }

    func testFileThatIsNotASharedLibraryCarriesTheLoadersReason() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-not-a-plugin-\(getpid()).so")
        try Data("name: not a library\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        XCTAssertThrowsError(try PluginLoader.load(path: file.path, into: PassRegistry())) { error in
            guard case let PluginError.notLoadable(path, reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, file.path)
            XCTAssertFalse(reason.isEmpty)
            XCTAssertTrue("\(error)".hasPrefix("plugin \(file.path): not a loadable shared library: "), "\(error)")
        }
        XCTAssertNil(ELFImports.undefinedSymbols(inFileAt: file.path))
    }

    func testSharedLibraryWithoutEntryPointIsNotAPlugin() throws {
        let candidates = ["/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1", "/usr/lib/libz.so.1"]
        guard let libz = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw XCTSkip("no libz.so.1 in \(candidates)")
        }
        let resolved = URL(fileURLWithPath: libz).standardizedFileURL.path
        XCTAssertThrowsError(try PluginLoader.load(path: libz, into: PassRegistry())) { error in
            XCTAssertEqual(error as? PluginError, .missingEntryPoint(path: resolved, symbol: "lancet_plugin_entry"))
            XCTAssertEqual("\(error)", "plugin \(resolved): not a Lancet plugin: it exports no 'lancet_plugin_entry' entry point "
                + "(see Docs/WritingAPass.md)")
        }
    }

    func testAPIVersionMismatchIsRejectedBeforeTheDefinitionIsRead() {
        // A stale plugin returns its own API version and no definition; the pointer is not even looked at.
        let bogus = UnsafeMutableRawPointer(bitPattern: 0x10)
        XCTAssertThrowsError(try PluginLoader.accept(apiVersion: PluginAPI.version + 1, definition: bogus, path: "/p/libOld.so")) { error in
            XCTAssertEqual(error as? PluginError, .apiVersionMismatch(path: "/p/libOld.so", plugin: PluginAPI.version + 1, host: PluginAPI.version))
            XCTAssertEqual("\(error)", "plugin /p/libOld.so: built for Lancet plugin API \(PluginAPI.version + 1), this Lancet has API "
                + "\(PluginAPI.version); rebuild the plugin against this Lancet with the same Swift toolchain")
        }
    }

    func testDefinitionThatIsNotTheHostsTypeIsRejected() {
        final class Impostor {}
        let raw = Unmanaged<AnyObject>.passRetained(Impostor()).toOpaque()
        XCTAssertThrowsError(try PluginLoader.accept(apiVersion: PluginAPI.version, definition: raw, path: "/p/libX.so")) { error in
            guard case let PluginError.malformedPlugin(_, reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("is not this Lancet's PluginDefinition"), reason)
        }
        XCTAssertThrowsError(try PluginLoader.accept(apiVersion: PluginAPI.version, definition: nil, path: "/p/libX.so")) { error in
            XCTAssertEqual("\(error)", "plugin /p/libX.so: its entry point returned no plugin definition")
        }
    }

    func testExportHandsOverADefinitionOnlyForTheSameAPIVersion() throws {
        enum Local: LancetPlugin {
            static let name = "local"
            static let version = "0.0.1"
            static var passes: [any SurgeryPass.Type] { [] }
        }
        var raw: UnsafeMutableRawPointer?
        XCTAssertEqual(Local.export(hostAPIVersion: PluginAPI.version + 1, to: &raw), PluginAPI.version)
        XCTAssertNil(raw)
        XCTAssertEqual(Local.export(hostAPIVersion: PluginAPI.version, to: &raw), PluginAPI.version)
        let definition = try PluginLoader.accept(apiVersion: PluginAPI.version, definition: raw, path: "/p/libLocal.so")
        XCTAssertEqual(definition.name, "local")
        XCTAssertEqual(definition.version, "0.0.1")
    }
}
