#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import LancetIR

/// Loads pass plugins: shared libraries that export `lancet_plugin_entry` (see `LancetPlugin`).
///
/// Only explicit paths are loaded (a bare name is taken relative to the working directory, never searched
/// for on the library path). One copy of Lancet's types serves host and plugin: the plugin links against
/// the `Lancet` dynamic library product, so its references to Lancet are left undefined, and the host
/// executable exports its own (static) copy with `--export-dynamic`; `dlopen` binds every reference to the
/// host's definition because the executable comes first in the global lookup scope. (A plugin that carried
/// Lancet statically could not be redirected: Swift gives public symbols protected visibility on ELF, so
/// they bind inside the library at link time.) The loader verifies the result before trusting the plugin:
/// no reference may have fallen through to the plugin's own `libLancet.so`, the definition object must be
/// the host's `PluginDefinition`, and every pass must conform to the host's `BlockPass` or `ModelPass`.
///
/// The library is opened with `RTLD_NOW | RTLD_LOCAL`, so unresolved symbols fail at load time and the
/// plugin's own symbols stay private. Libraries are never unloaded: the Swift runtime keeps pointers into
/// their type metadata.
public enum PluginLoader {
    /// Loads the plugin at `path`, registers its passes in `registry` with `origin` = the absolute path, and its
    /// ops with `OpRegistry`.
    /// Throws a `PluginError` naming the path when the file is missing, is not a loadable shared library,
    /// exports no entry point, was built for another plugin API, hands over types that are not the
    /// host's, or registers a pass name that is taken or malformed. Registration is all-or-nothing.
    public static func load(path: String, into registry: PassRegistry) throws -> PluginInfo {
        let absolute = absolutePath(path)
        guard !path.isEmpty, FileManager.default.fileExists(atPath: absolute) else { throw PluginError.fileNotFound(path: absolute) }
        guard let handle = dlopen(absolute, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginError.notLoadable(path: absolute, reason: lastLoaderError() ?? "dlopen failed")
        }
        try checkImportsResolveToHost(path: absolute, handle: handle)
        _ = dlerror()
        guard let symbol = dlsym(handle, PluginAPI.entryPointSymbol) else {
            throw PluginError.missingEntryPoint(path: absolute, symbol: PluginAPI.entryPointSymbol)
        }
        let entry = unsafeBitCast(symbol, to: PluginAPI.EntryPoint.self)
        var handedOver: UnsafeMutableRawPointer?
        let pluginAPI = entry(PluginAPI.version, &handedOver)
        let definition = try accept(apiVersion: pluginAPI, definition: handedOver, path: absolute)
        // Ops are checked before the passes are registered, so a refused plugin registers nothing.
        if let problem = OpRegistry.conflict(with: definition.ops) { throw PluginError.registrationFailed(path: absolute, reason: problem) }
        do {
            try registry.register(definition.passes, origin: absolute)
            try OpRegistry.register(definition.ops)
        } catch let e as RegistryError {
            throw PluginError.registrationFailed(path: absolute, reason: e.reason)
        } catch let e as OpShapeError {
            throw PluginError.registrationFailed(path: absolute, reason: e.reason)
        }
        return PluginInfo(path: absolute, name: definition.name, version: definition.version, apiVersion: pluginAPI,
                          passes: definition.passes.map { $0.name }, ops: definition.ops.map { $0.kind })
    }

    /// Checks what an entry point returned: the API version first (without touching the pointer when it
    /// differs), then that the object and every pass type are the host's own Lancet types.
    static func accept(apiVersion: UInt32, definition raw: UnsafeMutableRawPointer?, path: String) throws -> PluginDefinition {
        guard apiVersion == PluginAPI.version else {
            throw PluginError.apiVersionMismatch(path: path, plugin: apiVersion, host: PluginAPI.version)
        }
        guard let raw else { throw PluginError.malformedPlugin(path: path, reason: "its entry point returned no plugin definition") }
        let object = Unmanaged<AnyObject>.fromOpaque(raw).takeRetainedValue()
        guard let definition = object as? PluginDefinition else {
            throw PluginError.malformedPlugin(path: path, reason: "its plugin definition (\(type(of: object))) is not this Lancet's "
                + "PluginDefinition: the plugin's Lancet types did not resolve to the host's (is the host linked with "
                + "-Xlinker --export-dynamic, and were both built from the same Lancet?)")
        }
        for pass in definition.passes where !(pass is any BlockPass.Type) && !(pass is any ModelPass.Type) {
            throw PluginError.malformedPlugin(path: path, reason: "pass type \(pass) ('\(pass.name)') is neither a BlockPass nor a "
                + "ModelPass of this Lancet")
        }
        return definition
    }

    /// Checks that none of the plugin's references bound to a `libLancet.so` of its own instead of the host's
    /// exported Lancet (see `ELFImports`); such a plugin would run on two copies of Lancet's types.
    static func checkImportsResolveToHost(path: String, handle: UnsafeMutableRawPointer) throws {
        #if os(Linux)
        // The plugin's own libLancet.so, loaded as its dependency (found by name among the loaded objects).
        guard let imports = ELFImports.undefinedSymbols(inFileAt: path),
              let ownLancet = dlopen("libLancet.so", RTLD_NOW | RTLD_NOLOAD) else { return }
        defer { dlclose(ownLancet) }  // drops only the reference RTLD_NOLOAD added
        // dlsym(nil, …) searches the global scope (RTLD_DEFAULT): the host first, which is where each reference binds
        // if it can; otherwise it binds inside the plugin's own dependencies.
        let foreign = imports.filter { dlsym(nil, $0) == nil && dlsym(ownLancet, $0) != nil }
        guard let first = foreign.first else { return }
        throw PluginError.malformedPlugin(path: path, reason: "\(foreign.count) of its references to Lancet (first: \(first)) bind to "
            + "its own libLancet.so, not to this lancet, which does not export them: rebuild the plugin against the Lancet sources "
            + "this lancet was built from (a host embedding Lancet must link with -Xlinker --export-dynamic)")
        #endif
    }

    /// `path` made absolute against the working directory and standardised.
    static func absolutePath(_ path: String) -> String {
        path.isEmpty ? path : URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The dynamic loader's last error message, if any.
    static func lastLoaderError() -> String? {
        guard let message = dlerror() else { return nil }
        return String(cString: message)
    }
}
