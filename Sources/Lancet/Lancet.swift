// The umbrella module: `import Lancet` gives scripts and out-of-tree passes every public layer.
@_exported import LancetData
@_exported import LancetIO
@_exported import LancetIR
@_exported import LancetPassesCollapse
@_exported import LancetPassesCurvature
@_exported import LancetPassesSearch
@_exported import LancetPassesDecompose
@_exported import LancetPassesDynamic
@_exported import LancetPassesMoE
@_exported import LancetPassesPrune
@_exported import LancetRuntime
@_exported import LancetSurgery
@_exported import LancetTensor

/// The one list of built-in passes: each in-tree pass target contributes one explicit table (`PrunePasses.all`),
/// concatenated here, the lowest module that sees every pass target. The CLI, the validator, `lancet passes`
/// and scripts use `registry()`; a name registered twice is a start-up error.
public enum BuiltinPasses {
    /// The tables of the in-tree pass targets.
    public static let tables: [[any SurgeryPass.Type]] = [PrunePasses.all, CollapsePasses.all, DecomposePasses.all, MoEPasses.all,
                                                          DynamicPasses.all, CurvaturePasses.all, SearchPasses.all]

    /// A registry of the built-in tables plus `extra` tables (passes a caller or a test adds); throws
    /// `RegistryError` for empty, malformed or duplicate names.
    public static func registry(extra: [[any SurgeryPass.Type]] = []) throws -> PassRegistry {
        try BuiltinOps.register()
        let registry = PassRegistry()
        for table in tables + extra { try registry.register(table) }
        return registry
    }
}

/// The IR ops the in-tree pass targets introduce (`DynamicPasses.ops`), registered with `OpRegistry` like a plugin's:
/// models holding them load once `register()` ran. `BuiltinPasses.registry()` and the `lancet` tool call it.
public enum BuiltinOps {
    /// The tables of the in-tree pass targets' ops.
    public static let tables: [[any Op.Type]] = [DynamicPasses.ops]

    /// Registers every table's ops (again is harmless).
    public static func register() throws { for table in tables { try OpRegistry.register(table) } }
}
