import LancetSurgery

/// The pruning family's registration table.
public enum PrunePasses {
    /// Every pass of `LancetPassesPrune`.
    public static let all: [any SurgeryPass.Type] = [
        MagnitudePass.self,
        WandaPass.self,
        SparseGPTPass.self,
        WandaPlusPlusPass.self,
        PruneStructuredPass.self,
    ]
}
