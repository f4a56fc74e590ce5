/// What `PluginLoader.load` loaded: the library, the plugin's self-description and the passes and ops it added.
public struct PluginInfo: Sendable, Equatable {
    /// The library's absolute path (also the `origin` of its passes in the registry).
    public let path: String
    /// The plugin's name.
    public let name: String
    /// The plugin's own version.
    public let version: String
    /// The plugin API version it was built against (equal to `PluginAPI.version`).
    public let apiVersion: UInt32
    /// The names of the passes it registered, in table order.
    public let passes: [String]
    /// The kinds of the IR ops it registered, in table order.
    public let ops: [String]

    /// A description.
    public init(path: String, name: String, version: String, apiVersion: UInt32, passes: [String], ops: [String] = []) {
        self.path = path
        self.name = name
        self.version = version
        self.apiVersion = apiVersion
        self.passes = passes
        self.ops = ops
    }
}
