// The umbrella module: `import Lancet` gives scripts and out-of-tree passes every public layer.
@_exported import LancetData
@_exported import LancetIO
@_exported import LancetIR
@_exported import LancetPassesPrune
@_exported import LancetRuntime
@_exported import LancetSurgery
@_exported import LancetTensor

/// Every built-in pass table, concatenated in one place.
public enum BuiltinPassTables {
    /// The tables of the in-tree pass targets.
    public static let all: [[any SurgeryPass.Type]] = [PrunePasses.all]

    /// A registry holding every built-in pass (duplicate names are an error).
    public static func registry() throws -> PassRegistry { try BuiltinPasses.registry(extra: all) }
}
