import LancetIR
import LancetTensor

/// The structures `surgeon` removes whole from a Llama block, with their OBS costs under the K-FAC curvature, and
/// the removal itself (correlated update of the remaining weights, then slicing).
///
/// - an **FFN channel** c: row c of `mlp.gate` and `mlp.up`, column c of `mlp.down` (3·hidden parameters);
/// - a **KV group** k: KV head k (rows of `attn.k`, `attn.v`) with the query heads that read it (rows of `attn.q`,
///   columns of `attn.o`), so grouped-query attention stays consistent.
///
/// A structure's cost is the sum, over the linears it touches, of the loss increase ΔL of removing its rows
/// (`rows`), its columns (`columns`) or both (`rows+columns`), each row or column set removed together
/// (`KroneckerCurvature.rowSetCost`); the structures are ranked by cost per parameter across the whole model.
enum SurgeonStructures {
    /// What a structure is.
    enum Kind: Hashable {
        case channel(Int)
        case group(Int)

        /// Whether it is an FFN channel.
        var isChannel: Bool { if case .channel = self { true } else { false } }
        /// The channel's index (−1 for a group).
        var channel: Int { if case let .channel(c) = self { c } else { -1 } }
    }

    /// A removable structure of one block.
    struct Unit {
        var block: Int
        var kind: Kind
        /// ΔL of removing it.
        var cost: Double
        /// The parameters its removal takes away.
        var parameters: Int
    }

    /// The linears whose curvature the structured costs read.
    static let attentionNodes = ["attn.q", "attn.k", "attn.v", "attn.o"]
    static let mlpNodes = ["mlp.gate", "mlp.up", "mlp.down"]

    /// Query-head rows (of `attn.q`, columns of `attn.o`) and KV rows (of `attn.k`/`attn.v`) of KV group `k`.
    static func groupRows(_ k: Int, _ a: LlamaBlock.Attention) -> (query: [Int], kv: [Int]) {
        let perGroup = a.heads / a.kvHeads, d = a.headDimensions
        return (Array((k * perGroup * d)..<((k + 1) * perGroup * d)), Array((k * d)..<((k + 1) * d)))
    }

    /// The removable structures of `block` and their costs. `mlp`/`attention` say which sub-layers may lose
    /// structures; `curvature` holds the K-FAC curvature of their linears by node name.
    static func units(of block: Block, index: Int, structure: SurgeonPass.Structure, mlp: Bool, attention: Bool,
                      curvature: [String: KroneckerCurvature]) throws -> [Unit] {
        var result: [Unit] = []
        let rows = structure != .columns, columns = structure != .rows
        if mlp, let width = LlamaBlock.ffnWidth(of: block), let gate = curvature["mlp.gate"], let up = curvature["mlp.up"],
           let down = curvature["mlp.down"], let wg = block.parameters["mlp.gate.weight"], let wu = block.parameters["mlp.up.weight"],
           let wd = block.parameters["mlp.down.weight"] {
            var cost = [Double](repeating: 0, count: width)
            if rows {
                for (c, (g, u)) in zip(gate.rowCosts(wg), up.rowCosts(wu)).enumerated() { cost[c] += g + u }
            }
            if columns {
                for (c, d) in down.columnCosts(wd).enumerated() { cost[c] += d }
            }
            let parameters = wg.shape[1] + wu.shape[1] + wd.shape[0]
            result += cost.enumerated().map { Unit(block: index, kind: .channel($0), cost: $1, parameters: parameters) }
        }
        if attention, let a = LlamaBlock.attentionSizes(of: block), let q = curvature["attn.q"], let k = curvature["attn.k"],
           let v = curvature["attn.v"], let o = curvature["attn.o"], let wq = block.parameters["attn.q.weight"],
           let wk = block.parameters["attn.k.weight"], let wv = block.parameters["attn.v.weight"], let wo = block.parameters["attn.o.weight"] {
            let hidden = wq.shape[1]
            for group in 0..<a.kvHeads {
                let (query, kv) = groupRows(group, a)
                var cost = 0.0
                if rows { cost += try q.rowSetCost(wq, rows: query) + k.rowSetCost(wk, rows: kv) + v.rowSetCost(wv, rows: kv) }
                if columns { cost += try o.columnSetCost(wo, columns: query) }
                let parameters = (query.count + 2 * kv.count) * hidden + wo.shape[0] * query.count
                result.append(Unit(block: index, kind: .group(group), cost: cost, parameters: parameters))
            }
        }
        return result
    }

    /// The structures to remove so that at least `parameters` parameters go: the cheapest per parameter first,
    /// skipping any that would leave a block with fewer than `minChannels` FFN channels or no KV group.
    static func select(_ units: [Unit], parameters: Int, minChannels: Int, channels: [Int: Int], groups: [Int: Int]) -> [Int: Set<Kind>] {
        var left = (channels: channels, groups: groups)
        var chosen: [Int: Set<Kind>] = [:]
        var removed = 0
        let order = units.indices.sorted { i, j in
            let (a, b) = (units[i].cost / Double(units[i].parameters), units[j].cost / Double(units[j].parameters))
            return a != b ? a < b : (units[i].block, units[i].parameters) < (units[j].block, units[j].parameters)
        }
        for i in order where removed < parameters {
            let unit = units[i]
            switch unit.kind {
            case .channel:
                guard left.channels[unit.block, default: 0] > minChannels else { continue }
                left.channels[unit.block, default: 0] -= 1
            case .group:
                guard left.groups[unit.block, default: 0] > 1 else { continue }
                left.groups[unit.block, default: 0] -= 1
            }
            chosen[unit.block, default: []].insert(unit.kind)
            removed += unit.parameters
        }
        return chosen
    }

    /// `chosen` with every block's kept FFN width rounded to the nearest multiple of `multiple` (not below `minChannels`
    /// rounded up to one, not above the width): a block short of the rounded width gets back its most expensive chosen
    /// channels, one past it loses its cheapest remaining ones (cost per parameter, as `select` ranks them).
    static func roundingWidths(_ chosen: [Int: Set<Kind>], units: [Unit], multiple: Int, minChannels: Int, channels: [Int: Int]) -> [Int: Set<Kind>] {
        guard multiple > 1 else { return chosen }
        var result = chosen
        let least = (max(minChannels, 1) + multiple - 1) / multiple * multiple
        for (block, width) in channels {
            var set = result[block] ?? []
            let removed = set.count(where: \.isChannel)
            guard removed > 0 else { continue }
            let kept = width - removed
            let target = min(max(Int((Double(kept) / Double(multiple)).rounded()) * multiple, least), width)
            guard target != kept else { continue }
            // This block's channels, cheapest per parameter first.
            let ranked = units.filter { $0.block == block && $0.kind.isChannel }
                .sorted { ($0.cost / Double($0.parameters), $0.kind.channel) < ($1.cost / Double($1.parameters), $1.kind.channel) }
            var left = kept
            if target < kept {
                for unit in ranked where left > target && !set.contains(unit.kind) { set.insert(unit.kind); left -= 1 }
            } else {
                for unit in ranked.reversed() where left < target && set.contains(unit.kind) { set.remove(unit.kind); left += 1 }
            }
            result[block] = set.isEmpty ? nil : set
        }
        return result
    }

    /// `block` without the structures `remove`: with `update`, the remaining weights of every linear touched first
    /// get the correlated OBS update of its removed rows or columns (`KroneckerCurvature.removingRows/Columns`); then
    /// the block is sliced (`BlockSlicing`).
    static func remove(_ remove: Set<Kind>, from block: Block, curvature: [String: KroneckerCurvature], update: Bool) throws -> Block {
        var block = block
        let channels = remove.compactMap { if case let .channel(c) = $0 { return c } else { return nil } }.sorted()
        let groups = remove.compactMap { if case let .group(g) = $0 { return g } else { return nil } }.sorted()
        func apply(_ node: String, rows: [Int] = [], columns: [Int] = []) throws {
            let name = node + ".weight"
            guard update, let c = curvature[node], var w = block.parameters[name] else { return }
            if !rows.isEmpty { w = try c.removingRows(w, rows: rows) }
            if !columns.isEmpty { w = try c.removingColumns(w, columns: columns) }
            if let mask = block.masks[name] { block.setMasked(name, weight: w, mask: mask) } else { block.parameters[name] = w }
        }
        var plan = BlockSlicing.Plan()
        if !channels.isEmpty, let width = LlamaBlock.ffnWidth(of: block) {
            try apply("mlp.gate", rows: channels)
            try apply("mlp.up", rows: channels)
            try apply("mlp.down", columns: channels)
            let gone = Set(channels)
            plan.keptChannels = (0..<width).filter { !gone.contains($0) }
        }
        if !groups.isEmpty, let a = LlamaBlock.attentionSizes(of: block) {
            let parts = groups.map { groupRows($0, a) }
            let query = parts.flatMap(\.query), kv = parts.flatMap(\.kv)
            try apply("attn.q", rows: query)
            try apply("attn.k", rows: kv)
            try apply("attn.v", rows: kv)
            try apply("attn.o", columns: query)
            let gone = Set(groups), perGroup = a.heads / a.kvHeads
            plan.keptKVHeads = (0..<a.kvHeads).filter { !gone.contains($0) }
            plan.keptHeads = (0..<a.heads).filter { !gone.contains($0 / perGroup) }
        }
        return plan == BlockSlicing.Plan() ? block : try BlockSlicing.slice(block, plan)
    }
}
