import LancetIR
import LancetSurgery

extension PruneStructuredPass {
    /// When the blocks can come out with different sizes, from the options and targets alone: a sub-layer may be
    /// removed whole (`remove_sublayer_below`, `allow_remove_attention`); the blocks are cut in different ways
    /// (the targets select different sub-layers, or the blocks already differ); or, with `attention_share` unset,
    /// each block's budget is split between heads and channels by its own scores. Otherwise every block loses the
    /// same heads and channels count, and blocks that were alike stay alike.
    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? {
        guard options.sparsity > 0 || options.removeSublayerBelow != nil else { return nil }
        if options.removeSublayerBelow != nil { return "remove_sublayer_below may remove a whole sub-layer of some blocks" }
        var cuts = Set<[Bool]>(), shapes = Set<[Int]>()
        for (i, block) in model.blocks.enumerated() {
            guard let cut = try? Self.selectedSublayers(of: block, index: i, selected: targets.linears(in: block, index: i).map(\.node.name)) else { continue }
            cuts.insert([cut.attention, cut.mlp])
            let a = LlamaBlock.attentionSizes(of: block)
            shapes.insert([a?.heads ?? 0, a?.kvHeads ?? 0, a?.headDimensions ?? 0, LlamaBlock.ffnWidth(of: block) ?? 0])
        }
        if options.allowRemoveAttention, cuts.contains(where: { $0[0] }) { return "allow_remove_attention may remove the attention sub-layer of some blocks" }
        if cuts.count > 1 { return "its targets cut different sub-layers in different blocks (some blocks keep their sizes)" }
        if shapes.count > 1 { return "the model's blocks already differ in sizes" }
        if options.attentionShare == nil, cuts.first == [true, true] {
            return "with attention_share unset, each block splits its budget between heads and FFN channels by its own scores"
        }
        return nil
    }
}
