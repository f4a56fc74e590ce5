import LancetSurgery

/// The dense → mixture-of-experts family's registration table.
public enum MoEPasses {
    /// Every pass of `LancetPassesMoE`.
    public static let all: [any SurgeryPass.Type] = [
        MoEfyPass.self,
    ]
}
