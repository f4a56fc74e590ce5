import LancetIR

/// What a plugin hands to the host through its entry point: its name, version, pass table and op table.
///
/// Created by `LancetPlugin.export(hostAPIVersion:to:)` inside the plugin; because the plugin's references
/// to Lancet bind to the host's copy (see `PluginLoader`), the object is an instance of the host's own
/// class, which the loader checks before trusting it.
public final class PluginDefinition: Sendable {
    /// The plugin's name (`example-pass`).
    public let name: String
    /// The plugin's own version (`1.0.0`).
    public let version: String
    /// The plugin's registration table.
    public let passes: [any SurgeryPass.Type]
    /// The IR ops the plugin introduces (registered with `OpRegistry`, so archives and checkpoints holding them load).
    public let ops: [any Op.Type]

    /// A definition.
    public init(name: String, version: String, passes: [any SurgeryPass.Type], ops: [any Op.Type]) {
        self.name = name
        self.version = version
        self.passes = passes
        self.ops = ops
    }
}
