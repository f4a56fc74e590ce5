import Foundation

/// Pretty, key-sorted JSON for `--json` outputs. Non-finite numbers (a NaN perplexity of a model with a NaN
/// weight loaded with `LANCET_ALLOW_NONFINITE=1`) are written as the strings "nan", "inf" and "-inf".
enum JSONOutput {
    static func string<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
