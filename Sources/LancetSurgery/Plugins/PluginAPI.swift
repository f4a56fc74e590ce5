/// The binary contract between the `lancet` host and a plugin library (LLVM's `PassPluginLibraryInfo`,
/// reduced to what Lancet needs).
///
/// A plugin exports one C symbol, `lancet_plugin_entry`, of C type
/// `uint32_t lancet_plugin_entry(uint32_t hostAPIVersion, void **definition)`. The host passes its API
/// version; the plugin returns the API version it was compiled against and, only when the two are equal,
/// stores a retained `PluginDefinition` into `*definition`. On a mismatch neither side touches the other's
/// Swift types, so a stale plugin fails with a clear error instead of crashing. Plugins never write this
/// function by hand beyond the one-line forwarder to `LancetPlugin.export(hostAPIVersion:to:)`.
public enum PluginAPI {
    /// The API version, bumped whenever a public type a plugin can see changes layout or meaning (in
    /// practice: with every Lancet release, since Lancet is built without library evolution).
    ///
    /// `@_transparent` is what makes the check real: the value is folded into the plugin's own code
    /// when the plugin is compiled, whereas an ordinary public property would be read through the symbol
    /// table at load time and resolve to the host's value.
    @_transparent
    public static var version: UInt32 { 2 }

    /// The name of the entry point symbol.
    public static let entryPointSymbol = "lancet_plugin_entry"

    /// The entry point's C type.
    public typealias EntryPoint = @convention(c) (UInt32, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> UInt32
}
