import LancetIR
import LancetRuntime

/// How much the channels a model's `dynamic-ffn` ops choose overlap between prompts: the mean Jaccard index
/// |A ∩ B| / |A ∪ B| of two prompts' chosen channels, averaged over the ops (blocks), for every pair of prompts
/// within one text and across two texts.
public enum ChannelOverlap {
    /// The choices of each prompt in `prompts` (each run on its own as one whole sequence, so every op chooses from
    /// that prompt alone).
    public static func choices(_ model: Model, prompts: [[Int32]]) throws -> [[String: [Int]]] {
        let runner = ModelRunner(model: model)
        return try prompts.map { prompt in
            var chosen: [String: [Int]] = [:]
            let context = ExecutionContext(batch: 1, length: prompt.count)
            _ = try runner.hiddenStates(prompt, context: context) { block, _ in
                for (node, ids) in context.routing { chosen["\(block)/\(node)"] = ids.map(Int.init) }
                context.routing.removeAll()
            }
            return chosen
        }
    }

    /// The mean over pairs (one prompt from `a`, one from `b`; distinct prompts when `b` is nil, meaning within `a`)
    /// of the mean over ops of the Jaccard index of their choices; nil without a pair or without ops.
    public static func meanJaccard(_ a: [[String: [Int]]], _ b: [[String: [Int]]]? = nil) -> Double? {
        var total = 0.0, pairs = 0
        for (i, x) in a.enumerated() {
            let others = b.map { Array($0.enumerated()) } ?? Array(a.enumerated()).filter { $0.offset > i }
            for (_, y) in others {
                let nodes = Set(x.keys).intersection(y.keys)
                guard !nodes.isEmpty else { continue }
                total += nodes.reduce(0.0) { $0 + ChannelContribution.jaccard(x[$1]!, y[$1]!) } / Double(nodes.count)
                pairs += 1
            }
        }
        return pairs == 0 ? nil : total / Double(pairs)
    }
}
