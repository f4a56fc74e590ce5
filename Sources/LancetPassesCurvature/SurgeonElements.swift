import LancetIR
import LancetTensor

/// The element-wise structures of `surgeon`: single weights (`unstructured`) and 2:4 groups (`2:4`), chosen by one
/// global threshold on their OBS costs across every targeted linear of the model, as the LLM Surgeon does.
enum SurgeonElements {
    /// One targeted linear's element costs (`KroneckerCurvature.elementCosts`).
    struct Costs {
        var block: Int
        var node: String
        var costs: Tensor
    }

    /// The masks that drop the `count` cheapest elements over all `linears` (ties: in order of the list, then row-major).
    static func unstructured(_ linears: [Costs], count: Int) -> [Mask] {
        var all = linears.flatMap { $0.costs.withUnsafeBufferPointer { Array($0) } }
        guard count > 0, !all.isEmpty else { return linears.map { Mask(keepingAllOf: $0.costs.shape) } }
        let threshold = kthSmallest(&all, min(count, all.count) - 1)
        var below = 0
        for linear in linears { linear.costs.withUnsafeBufferPointer { p in below += p.reduce(0) { $0 + ($1 < threshold ? 1 : 0) } } }
        var ties = count - below
        return linears.map { linear in
            linear.costs.withUnsafeBufferPointer { p in
                Mask(shape: linear.costs.shape, keep: p.map { c in
                    if c < threshold { return 0 }
                    if c == threshold, ties > 0 { ties -= 1; return 0 }
                    return 1
                })
            }
        }
    }

    /// The masks that drop 2 of 4 in the `count` cheapest groups of four consecutive inputs over all `linears` (a
    /// group's cost is the sum of its two cheapest elements, which are the ones dropped). Every linear's input width
    /// must be a multiple of 4.
    static func semiStructured(_ linears: [Costs], count: Int) -> [Mask] {
        func groupCosts(_ c: Costs) -> [Float] {
            c.costs.withUnsafeBufferPointer { p in
                stride(from: 0, to: p.count, by: 4).map { g in
                    let s = p[g..<(g + 4)].sorted()
                    return s[0] + s[1]
                }
            }
        }
        let groups = linears.map(groupCosts)
        let keepAll = linears.map { Mask(keepingAllOf: $0.costs.shape) }
        var all = Array(groups.joined())
        guard count > 0, !all.isEmpty else { return keepAll }
        let threshold = kthSmallest(&all, min(count, all.count) - 1)
        var ties = count - groups.joined().reduce(0) { $0 + ($1 < threshold ? 1 : 0) }
        return zip(linears, groups).map { linear, groupCost in
            var keep = [UInt8](repeating: 1, count: linear.costs.count)
            linear.costs.withUnsafeBufferPointer { p in
                for (g, cost) in groupCost.enumerated() {
                    guard cost < threshold || (cost == threshold && ties > 0) else { continue }
                    if cost == threshold { ties -= 1 }
                    let order = (0..<4).sorted { (p[4 * g + $0], $0) < (p[4 * g + $1], $1) }
                    keep[4 * g + order[0]] = 0
                    keep[4 * g + order[1]] = 0
                }
            }
            return Mask(shape: linear.costs.shape, keep: keep)
        }
    }

    /// The `k`-th smallest of `values` (0-based), by quickselect; `values` is reordered.
    static func kthSmallest(_ values: inout [Float], _ k: Int) -> Float {
        precondition(k >= 0 && k < values.count, "kthSmallest: \(k) out of 0..<\(values.count)")
        var (low, high) = (0, values.count - 1)
        while low < high {
            let middle = low + (high - low) / 2
            let pivot = [values[low], values[middle], values[high]].sorted()[1]
            var (i, j) = (low, high)
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
        }
        return values[k]
    }
}
