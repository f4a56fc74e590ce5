import LancetSurgery

/// The architecture-search family's registration table.
public enum SearchPasses {
    /// Every pass of `LancetPassesSearch`.
    public static let all: [any SurgeryPass.Type] = [
        SearchPass.self,
    ]
}
