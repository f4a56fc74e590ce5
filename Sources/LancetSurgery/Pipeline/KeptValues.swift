import Foundation
import LancetTensor

/// Named values of one block kept over every calibration window (`[windows·length, features]` each): written
/// call by call during a sweep, read back call by call by a later run on the same inputs in place of running the
/// nodes that computed them again. The same calls (windows per call) give the same values bit for bit, so a run
/// that reads them computes what it would have computed itself.
///
/// Holding values costs memory (`byteCount`); a sweep keeps them only within `budget` bytes and otherwise keeps
/// none, and its readers compute the values themselves.
final class KeptValues {
    /// Tokens per window.
    let length: Int
    /// Windows of the sweep.
    let windows: Int
    /// The most bytes the values may take; names that would exceed it are not kept.
    let budget: Int
    private var tensors: [String: Tensor] = [:]

    /// Room for values over `windows` windows of `length` tokens, within `budget` bytes.
    init(windows: Int, length: Int, budget: Int = KeptValues.defaultBudget) {
        self.windows = windows
        self.length = length
        self.budget = budget
    }

    /// A quarter of the machine's memory, at most 4 GiB.
    static var defaultBudget: Int { Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30)) }

    /// The names kept.
    var names: Set<String> { Set(tensors.keys) }

    /// Bytes held.
    var byteCount: Int { tensors.values.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } }

    /// Stores one call's values of `names` (windows `range`); a name is kept from its first call on, if it fits the
    /// budget then, and dropped when a call lacks it.
    func store(_ values: [String: Tensor], names: Set<String>, windows range: Range<Int>) {
        for name in names.sorted() {
            guard let v = values[name], v.rank == 2, v.shape[0] == range.count * length else { tensors[name] = nil; continue }
            if range.lowerBound == 0 {
                let bytes = windows * length * v.shape[1] * MemoryLayout<Float>.stride
                guard byteCount + bytes <= budget else { continue }
                tensors[name] = Tensor(uninitializedShape: [windows * length, v.shape[1]])
            }
            tensors[name]?.setRows(from: v, at: range.lowerBound * length)
        }
    }

    /// The values of `names` for windows `range`, or nil unless every one of them is kept.
    func values(_ names: Set<String>, windows range: Range<Int>) -> [String: Tensor]? {
        var out: [String: Tensor] = [:]
        for name in names {
            guard let t = tensors[name] else { return nil }
            out[name] = t.slicingRows((range.lowerBound * length)..<(range.upperBound * length))
        }
        return out
    }

    /// Forgets every value.
    func removeAll() { tensors = [:] }
}
