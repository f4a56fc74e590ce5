import LancetIR

/// A pass library loaded at run time (`lancet … --plugin path/libMyPasses.so`).
///
/// A plugin package depends on the `Lancet` product, builds a `.dynamic` library product, declares one
/// type adopting `LancetPlugin`, and exports the entry point with a one-line forwarder:
///
/// ```swift
/// import Lancet
///
/// public enum MyPasses: LancetPlugin {
///     public static let name = "my-passes"
///     public static let version = "1.0.0"
///     public static let passes: [any SurgeryPass.Type] = [RandomPrune.self]
/// }
///
/// @c(lancet_plugin_entry)
/// public func lancetPluginEntry(_ hostAPIVersion: UInt32,
///                               _ definition: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> UInt32 {
///     MyPasses.export(hostAPIVersion: hostAPIVersion, to: definition)
/// }
/// ```
///
/// No macro and no code generation: `@c` (Swift 6.3) gives the function its C symbol, and `export` does
/// the versioned hand-over described in `PluginAPI`.
public protocol LancetPlugin {
    /// The plugin's name, for `lancet passes` and error messages.
    static var name: String { get }
    /// The plugin's own version.
    static var version: String { get }
    /// The plugin's registration table, like a built-in family's `…Passes.all`.
    static var passes: [any SurgeryPass.Type] { get }
    /// The IR ops the plugin introduces (forward, VJP, cost, shape rule and attributes are the `Op`'s own); the host
    /// registers them with `OpRegistry` when it loads the plugin. None by default.
    static var ops: [any Op.Type] { get }
}

extension LancetPlugin {
    public static var ops: [any Op.Type] { [] }
}

extension LancetPlugin {
    /// The body of the plugin's `lancet_plugin_entry`: returns the API version the plugin was compiled
    /// against and, when it equals `hostAPIVersion`, stores a retained `PluginDefinition` in `definition`.
    ///
    /// Emitted into the plugin (`@_alwaysEmitIntoClient`) so that the version it returns is the one the
    /// plugin was compiled with, not the host's.
    @_alwaysEmitIntoClient
    public static func export(hostAPIVersion: UInt32, to definition: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> UInt32 {
        let compiledAgainst = PluginAPI.version
        guard hostAPIVersion == compiledAgainst else { return compiledAgainst }
        let made = PluginDefinition(name: name, version: version, passes: passes, ops: ops)
        definition.pointee = Unmanaged<AnyObject>.passRetained(made).toOpaque()
        return compiledAgainst
    }
}
