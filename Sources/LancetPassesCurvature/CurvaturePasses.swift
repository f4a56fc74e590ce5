import LancetSurgery

/// The curvature family's registration table.
public enum CurvaturePasses {
    /// Every pass of `LancetPassesCurvature`.
    public static let all: [any SurgeryPass.Type] = [
        SurgeonPass.self,
    ]
}
