import Foundation
import Lancet

/// The readable form of a model's provenance records for `lancet inspect`: tool and version, input
/// model hash, calibration data, what each pass did, and the recipe.
enum ProvenanceText {
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
