import LancetSurgery

/// The layer-collapse family's registration table.
public enum CollapsePasses {
    /// Every pass of `LancetPassesCollapse`.
    public static let all: [any SurgeryPass.Type] = [
        RemoveLayersPass.self,
        LayerCollapsePass.self,
        ReplaceSpanPass.self,
    ]
}
