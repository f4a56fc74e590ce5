import Foundation
import LancetTensor

/// Named values of one block kept over every calibration window: written call by call during a sweep, read back
/// call by call by a later run on the same inputs in place of running the nodes that computed them again. Each call's
/// tensor is kept as the run made it (no copy), and a reader asking for the same windows gets it back: the same
/// calls (windows per call) give the same values bit for bit, so a run that reads them computes what it would have
/// computed itself.
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
    /// Each name's values by the first window of the call that computed them, with that call's window count.
    private var calls: [String: [Int: (windows: Int, value: Tensor)]] = [:]
    /// Bytes reserved per name: its values over every window, counted from its first call.
    private var reserved: [String: Int] = [:]

    /// Room for values over `windows` windows of `length` tokens, within `budget` bytes.
    init(windows: Int, length: Int, budget: Int = KeptValues.defaultBudget) {
        self.windows = windows
        self.length = length
        self.budget = budget
    }

    /// A quarter of the machine's memory, at most 4 GiB.
    static var defaultBudget: Int { Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30)) }

    /// The names kept.
    var names: Set<String> { Set(calls.keys) }

    /// Bytes the kept names take over every window.
    var byteCount: Int { reserved.values.reduce(0, +) }

    /// Stores one call's values of `names` (windows `range`); a name is kept from its first call on, if it fits the
    /// budget then, and dropped when a call lacks it.
    func store(_ values: [String: Tensor], names: Set<String>, windows range: Range<Int>) {
        for name in names.sorted() {
            guard let v = values[name], v.rank == 2, v.shape[0] == range.count * length else { drop(name); continue }
            if range.lowerBound == 0 {
                drop(name)
                let bytes = windows * length * v.shape[1] * MemoryLayout<Float>.stride
                guard byteCount + bytes <= budget else { continue }
                reserved[name] = bytes
                calls[name] = [:]
            }
            calls[name]?[range.lowerBound] = (range.count, v)
        }
    }

    /// The values of `names` for windows `range` (as stored by a call over the same windows), or nil unless every one
    /// of them is kept for them.
    func values(_ names: Set<String>, windows range: Range<Int>) -> [String: Tensor]? {
        var out: [String: Tensor] = [:]
        for name in names {
            guard let call = calls[name]?[range.lowerBound], call.windows == range.count else { return nil }
            out[name] = call.value
        }
        return out
    }

    /// Forgets every value.
    func removeAll() {
        calls = [:]
        reserved = [:]
    }

    private func drop(_ name: String) {
        calls[name] = nil
        reserved[name] = nil
    }
}
