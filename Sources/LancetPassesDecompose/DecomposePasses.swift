import LancetSurgery

/// The decomposition family's registration table.
public enum DecomposePasses {
    /// Every pass of `LancetPassesDecompose`.
    public static let all: [any SurgeryPass.Type] = [
        SVDPass.self,
        ASVDPass.self,
        SVDLLMPass.self,
        TensorizePass.self,
    ]
}
