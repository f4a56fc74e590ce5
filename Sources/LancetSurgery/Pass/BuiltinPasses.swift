/// The one place where the built-in pass tables are concatenated into the registry that the CLI, the
/// validator and `lancet passes` use. Each pass target contributes one explicit table
/// (`PrunePasses.all`); a name registered twice is a start-up error.
public enum BuiltinPasses {
    /// The built-in tables, one per pass target. `LancetSurgery` cannot import the pass targets (they
    /// import it), so the tables are handed in by `Lancet` or the CLI through `registry(extra:)` until a
    /// target above both owns this list.
    public static let tables: [[any SurgeryPass.Type]] = []

    /// A registry of the built-in tables plus `extra` tables (pass targets linked by the caller, tests);
    /// throws `RegistryError` for empty, malformed or duplicate names.
    public static func registry(extra: [[any SurgeryPass.Type]] = []) throws -> PassRegistry {
        let registry = PassRegistry()
        for table in tables + extra { try registry.register(table) }
        return registry
    }
}
