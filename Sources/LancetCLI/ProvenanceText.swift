import Foundation
import Lancet

/// The readable form of a model's provenance records for `lancet inspect`: tool and version, input
/// model hash, calibration data, what each pass did, and the recipe.
enum ProvenanceText {
    /// One line: how many records, and of the last the tool, the passes and the calibration; nil without records.
    static func summary(_ records: [String]) -> String? {
        guard let last = records.last else { return nil }
        let count = "\(records.count) record\(records.count == 1 ? "" : "s")"
        guard let r = try? JSONDecoder().decode(ProvenanceRecord.self, from: Data(last.utf8)) else { return "\(count), the last unreadable" }
        var passes: [String] = []
        for p in r.passes where !passes.contains(p.pass) { passes.append(p.pass) }
        let calibration = r.calibration.map { "\($0.samples) × \($0.context) tokens of \(($0.file as NSString).lastPathComponent)" } ?? "none"
        return "\(count); last: \(r.tool) \(r.version), passes \(passes.isEmpty ? "none" : passes.joined(separator: ", ")), calibration \(calibration) (--provenance for all)"
    }

    static func render(_ records: [String]) -> String {
        var lines: [String] = []
        for (k, json) in records.enumerated() {
            lines.append("")
            guard let r = try? JSONDecoder().decode(ProvenanceRecord.self, from: Data(json.utf8)) else {
                lines.append("provenance \(k + 1)/\(records.count): unreadable record (\(json.prefix(80))…)")
                continue
            }
            lines.append("provenance \(k + 1)/\(records.count): \(r.tool) \(r.version)")
            lines.append("  input model sha256  \(r.inputSHA256)")
            if let c = r.calibration {
                lines.append("  calibration         \(c.samples) × \(c.context) tokens, seed \(c.seed)\(c.sampler.map { " (\($0.rawValue) sampler)" } ?? ""), \(c.file) (sha256 \(c.sha256.prefix(16))…)")
            } else {
                lines.append("  calibration         none")
            }
            var order: [String] = []
            var blocks: [String: [Int]] = [:]
            for p in r.passes {
                let key = "\(p.pass) (fit \(p.fit ?? "none"))"
                if blocks[key] == nil { order.append(key) }
                blocks[key, default: []].append(contentsOf: p.block.map { [$0] } ?? [])
            }
            for key in order {
                let b = blocks[key]!
                lines.append("  pass                \(key) on \(b.isEmpty ? "the model" : "\(b.count) block(s)")")
            }
            lines.append("  recipe:")
            lines.append(contentsOf: r.recipe.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 })
        }
        return lines.joined(separator: "\n")
    }
}
