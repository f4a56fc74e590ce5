/// The check that a recipe's names, keys, paths and patterns are printable text: stage and pass names,
/// mapping keys, target patterns and file paths reach logs, reports and the output's provenance, where a
/// NUL, an escape sequence or a right-to-left override would cut or disguise what was run.
///
/// Refused: control characters (Unicode category Cc: C0, DEL, C1, so also tab and line breaks) and the
/// bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069). YAML can
/// only produce them through escapes (`"a\0b"`); libyaml refuses them raw. Option values are data for the
/// pass and may hold any text; the printer writes them back with escapes.
enum PrintableText {
    /// Why `text` is not printable (`contains the control character U+0000 at character 2; …`), or nil.
    static func problem(_ text: String) -> String? {
        for (i, u) in text.unicodeScalars.enumerated() where isRefused(u) {
            let code = String(u.value, radix: 16, uppercase: true)
            let kind = u.properties.generalCategory == .control ? "control character" : "bidirectional formatting character"
            return "contains the \(kind) U+\(String(repeating: "0", count: max(0, 4 - code.count)))\(code) at character \(i + 1); names, keys, paths and patterns must be printable text"
        }
        return nil
    }

    /// Whether `u` is refused.
    static func isRefused(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return u.properties.generalCategory == .control
        }
    }
}
