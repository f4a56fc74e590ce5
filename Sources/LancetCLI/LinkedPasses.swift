import Lancet

/// The pass tables linked into the `lancet` tool. Every command gets its registry from `registry()`, so
/// adding a pass target means adding its table here (e.g. `PrunePasses.all`) and the dependency in
/// Package.swift.
enum LinkedPasses {
    /// One table per linked pass target.
    static let tables: [[any SurgeryPass.Type]] = []

    /// The built-in registry plus the linked tables.
    static func registry() throws -> PassRegistry { try BuiltinPasses.registry(extra: tables) }
}
