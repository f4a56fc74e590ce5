import LancetIR
import LancetSurgery

/// The input-dependent family's registration tables.
public enum DynamicPasses {
    /// Every pass of `LancetPassesDynamic`.
    public static let all: [any SurgeryPass.Type] = [
        DynamicFFNPass.self,
    ]

    /// The IR ops the family introduces; `BuiltinOps` registers them before any model loads.
    public static let ops: [any Op.Type] = [
        DynamicFFNOp.self,
    ]
}
