/// GPT-2's reversible map between bytes and printable Unicode characters.
///
/// Byte-level BPE vocabularies spell every byte as a visible character so that tokens are
/// printable strings: the 188 printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for
/// themselves, and the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) are assigned
/// U+0100, U+0101, … in byte order. A space (0x20) is therefore `Ġ` (U+0120) and a newline `Ċ`.
public enum ByteUnicodeMapping {
    /// The character standing for each byte, indexed by byte value.
    public static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each mapped character stands for (U+0000…U+0143), or nil for other characters.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        guard v < 324 else { return nil }
        let b = byteForScalarTable[Int(v)]
        return b < 0 ? nil : UInt8(b)
    }

    /// The vocabulary spelling of `bytes`: one mapped character per byte.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarForByte[Int(b)]) }
        return String(s)
    }

    /// The bytes a vocabulary spelling stands for, or nil if it contains a character outside the map.
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            out.append(b)
        }
        return out
    }

    private static func isPrintable(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    private static let byteForScalarTable: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()
}
