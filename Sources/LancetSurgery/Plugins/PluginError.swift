/// Why a plugin could not be loaded, naming the library: `plugin /abs/libFoo.so: no entry point …`.
public enum PluginError: Error, CustomStringConvertible, Equatable {
    /// Nothing exists at the path.
    case fileNotFound(path: String)
    /// `dlopen` refused the file (not a shared library, wrong architecture, unresolved symbols); the
    /// reason is the loader's own text.
    case notLoadable(path: String, reason: String)
    /// The library loaded but does not export `lancet_plugin_entry`.
    case missingEntryPoint(path: String, symbol: String)
    /// The plugin was built against another plugin API (another Lancet version).
    case apiVersionMismatch(path: String, plugin: UInt32, host: UInt32)
    /// The entry point returned nothing usable, or types that are not the host's own (the plugin's
    /// references to Lancet did not resolve to the host's copy).
    case malformedPlugin(path: String, reason: String)
    /// The plugin's passes could not be registered (duplicate or malformed pass name).
    case registrationFailed(path: String, reason: String)

    /// The library's path.
    public var path: String {
        switch self {
        case let .fileNotFound(p), let .notLoadable(p, _), let .missingEntryPoint(p, _), let .apiVersionMismatch(p, _, _),
             let .malformedPlugin(p, _), let .registrationFailed(p, _):
            p
        }
    }

    public var description: String {
        let reason = switch self {
        case .fileNotFound:
            "no such file (plugins load only from an explicit path)"
        case let .notLoadable(_, reason):
            "not a loadable shared library: \(reason)"
        case let .missingEntryPoint(_, symbol):
            "not a Lancet plugin: it exports no '\(symbol)' entry point (see Docs/WritingAPass.md)"
        case let .apiVersionMismatch(_, plugin, host):
            "built for Lancet plugin API \(plugin), this Lancet has API \(host); rebuild the plugin against this Lancet with the same Swift toolchain"
        case let .malformedPlugin(_, reason):
            reason
        case let .registrationFailed(_, reason):
            "registering its passes failed: \(reason)"
        }
        return "plugin \(path): \(reason)"
    }
}
