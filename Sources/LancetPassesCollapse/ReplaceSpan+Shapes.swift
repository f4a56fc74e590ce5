import LancetIR
import LancetSurgery

extension ReplaceSpanPass {
    /// The replacement block has no attention sub-layer, which only GGUF's `deci` architecture holds.
    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? {
        "the block replacing the span has no attention sub-layer"
    }
}
