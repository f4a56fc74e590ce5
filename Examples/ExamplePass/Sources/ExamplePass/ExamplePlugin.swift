import Lancet

/// The plugin's self-description and registration table.
public enum ExamplePlugin: LancetPlugin {
    public static let name = "example-pass"
    public static let version = "1.0.0"
    public static var passes: [any SurgeryPass.Type] { [RandomPrune.self, BlockInfluenceRemoval.self] }
    public static var ops: [any Op.Type] { [PromptChannelGate.self] }
}

/// The entry point `PluginLoader` looks up: forwards to `LancetPlugin.export`, which checks the plugin
/// API version and hands the definition over.
@c(lancet_plugin_entry)
public func lancetPluginEntry(_ hostAPIVersion: UInt32, _ definition: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> UInt32 {
    ExamplePlugin.export(hostAPIVersion: hostAPIVersion, to: definition)
}
