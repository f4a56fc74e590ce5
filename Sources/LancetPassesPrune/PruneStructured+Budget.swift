import LancetIR
import LancetSurgery

extension PruneStructuredPass {
    /// What to keep of one block: the outcome of splitting the parameter budget between heads and
    /// channels and ranking each by importance.
    struct Plan {
        /// Remove the attention sub-layer whole.
        var removeAttention = false
        /// Remove the MLP sub-layer whole.
        var removeMLP = false
        /// Query heads kept, ascending (nil: attention unchanged).
        var keptHeads: [Int]?
        /// KV heads kept, ascending (nil: attention unchanged).
        var keptKVHeads: [Int]?
        /// FFN channels kept, ascending (nil: MLP unchanged).
        var keptChannels: [Int]?
        /// Linear parameters of the selected sub-layers before the cut.
        var selectedParameters = 0
        /// Of those, how many the plan removes.
        var removedParameters = 0
    }

    /// Splits a block's removal budget between its sub-layers and picks the units to remove.
    ///
    /// The budget is `sparsity` × the selected sub-layers' linear parameters. First, with
    /// `remove_sublayer_below` set, a selected sub-layer whose importance (relative output norm) is below
    /// the threshold is removed whole and its parameters count against the budget (it is removed even when
    /// that exceeds the budget). The rest R of the budget goes to units:
    /// - attention units (a KV group, or in `even` mode one query head per group, the group's weakest left)
    ///   cost c_A parameters each; at most enough are removed to keep `min_heads` query heads (and one KV
    ///   head or one head per group, unless `allow_remove_attention`, when removing all of them removes
    ///   the sub-layer);
    /// - with `attention_share` s set, n_A = round(s · R / c_A) attention units are removed;
    /// - with it unset, units are taken greedily by lowest score per parameter (score/c_A against a
    ///   channel's score/(3·hidden)) from the two ranked lists while one fits (an attention unit when
    ///   removed + c_A ≤ R + 3·hidden/2, a channel when removed + 3·hidden/2 ≤ R); this decides n_A, so the
    ///   split follows the scores (as FLAP ranks heads and channels globally) and never overshoots the
    ///   budget by more than half a channel;
    /// - with only the attention sub-layer cut (or no channel left to remove), n_A = round(R / c_A);
    /// - then n_C = round((R − n_A·c_A) / (3·hidden)) FFN channels, the kept width rounded to the nearest
    ///   multiple of `channel_multiple` and clamped to [`min_channels` (rounded up), width].
    /// Within each kind the lowest-scoring units go (ties: the lower index first).
    struct Budget {
        let options: Options
        let headMode: HeadMode

        func plan(block: Block, cutAttention: Bool, cutMLP: Bool, importance: Importance) -> Plan {
            var plan = Plan()
            let attention = cutAttention ? LlamaBlock.attentionSizes(of: block) : nil
            let ffn = cutMLP ? LlamaBlock.ffnWidth(of: block) : nil
            let hidden = block.parameters[attention != nil ? "attn.q.weight" : "mlp.gate.weight"]?.shape[1] ?? 0
            let attentionParameters = attention == nil ? 0 : Slicing.attentionLinears.reduce(0) { total, name in
                total + (block.parameters[name + ".weight"]?.count ?? 0) + (block.parameters[name + ".bias"]?.count ?? 0)
            }
            let channelCost = 3 * hidden
            let mlpParameters = (ffn ?? 0) * channelCost
            plan.selectedParameters = attentionParameters + mlpParameters
            let budget = options.sparsity * Double(plan.selectedParameters)
            var removed = 0

            if let threshold = options.removeSublayerBelow {
                if attention != nil, let s = importance.attentionLayer, s < threshold {
                    plan.removeAttention = true
                    removed += attentionParameters
                }
                if ffn != nil, let s = importance.mlpLayer, s < threshold {
                    plan.removeMLP = true
                    removed += mlpParameters
                }
            }
            let rest = max(0, budget - Double(removed))

            // Attention units, ascending by score.
            var units: [Double] = [], unitCost = 1, maxUnits = 0
            if let a = attention, !plan.removeAttention {
                let d = a.headDimensions, perGroup = a.heads / a.kvHeads, bias = a.qkvBias ? d : 0
                let headCost = 2 * d * hidden + bias
                switch headMode {
                case .kvGroups:
                    units = importance.groups.sorted()
                    unitCost = perGroup * headCost + 2 * d * hidden + 2 * bias
                    maxUnits = max(0, a.kvHeads - ceilDiv(options.minHeads, perGroup))
                case .even:
                    let ranked = (0..<a.kvHeads).map { k in importance.heads[(k * perGroup)..<((k + 1) * perGroup)].sorted() }
                    units = (0..<perGroup).map { t in ranked.reduce(0) { $0 + $1[t] } }
                    unitCost = a.kvHeads * headCost
                    maxUnits = max(0, perGroup - ceilDiv(options.minHeads, a.kvHeads))
                }
            }
            let channels = ffn != nil && !plan.removeMLP ? importance.channels.sorted() : []
            let minKept = roundUp(max(options.minChannels, 1), to: options.channelMultiple)
            let maxChannels = max(0, channels.count - minKept)

            // How many attention units go.
            var attentionUnits = 0
            if maxUnits > 0 {
                if channels.isEmpty || maxChannels == 0 {
                    attentionUnits = Int((rest / Double(unitCost)).rounded())
                } else if let share = options.attentionShare {
                    attentionUnits = Int((share * rest / Double(unitCost)).rounded())
                } else {
                    var taken = 0.0, a = 0, c = 0
                    while true {
                        let fitsA = a < maxUnits && taken + Double(unitCost) <= rest + Double(channelCost) / 2
                        let fitsC = c < maxChannels && taken + Double(channelCost) / 2 <= rest
                        guard fitsA || fitsC else { break }
                        let takeA = fitsA && (!fitsC || units[a] / Double(unitCost) <= channels[c] / Double(channelCost))
                        if takeA { a += 1; taken += Double(unitCost) } else { c += 1; taken += Double(channelCost) }
                    }
                    attentionUnits = a
                }
                attentionUnits = min(attentionUnits, maxUnits)
            }

            // Kept heads.
            if let a = attention, !plan.removeAttention, attentionUnits > 0 {
                let perGroup = a.heads / a.kvHeads
                switch headMode {
                case .kvGroups:
                    let gone = Set(ascending(importance.groups).prefix(attentionUnits))
                    plan.keptKVHeads = (0..<a.kvHeads).filter { !gone.contains($0) }
                    plan.keptHeads = plan.keptKVHeads!.flatMap { k in (k * perGroup)..<((k + 1) * perGroup) }
                case .even:
                    var kept: [Int] = []
                    for k in 0..<a.kvHeads {
                        let group = Array((k * perGroup)..<((k + 1) * perGroup))
                        let order = ascending(group.map { importance.heads[$0] }).map { group[$0] }
                        kept += order.dropFirst(attentionUnits)
                    }
                    plan.keptKVHeads = Array(0..<a.kvHeads)
                    plan.keptHeads = kept.sorted()
                }
                if plan.keptHeads!.isEmpty {
                    plan.removeAttention = true
                    plan.keptHeads = nil
                    plan.keptKVHeads = nil
                    removed += attentionParameters
                } else {
                    removed += attentionUnits * unitCost
                }
            }

            // Kept channels: the remainder of the budget, rounded to the channel multiple.
            if !channels.isEmpty {
                let wanted = Int(((rest - Double(attentionUnits * unitCost)) / Double(channelCost)).rounded())
                let removeCount = min(max(wanted, 0), maxChannels)
                if removeCount > 0 {
                    var width = channels.count - removeCount
                    width = Int((Double(width) / Double(options.channelMultiple)).rounded()) * options.channelMultiple
                    width = min(max(width, minKept), channels.count)
                    if width < channels.count {
                        let gone = Set(ascending(importance.channels).prefix(channels.count - width))
                        plan.keptChannels = (0..<channels.count).filter { !gone.contains($0) }
                        removed += (channels.count - width) * channelCost
                    }
                }
            }
            plan.removedParameters = removed
            return plan
        }

        /// Indices of `scores` from the lowest score up (ties: the lower index first).
        func ascending(_ scores: [Double]) -> [Int] {
            scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 < $1 }
        }

        func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
        func roundUp(_ a: Int, to m: Int) -> Int { ceilDiv(a, m) * m }
    }
}
