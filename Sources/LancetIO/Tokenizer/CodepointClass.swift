/// The character classes pre-tokenizers test (`\p{L}`, `\p{N}`, `\p{P}`, `\p{S}`, `\s`), defined
/// as llama.cpp's `unicode.cpp` defines them:
///
/// - letter: general category L (Lu, Ll, Lt, Lm, Lo); number: N (Nd, Nl, No);
///   punctuation: P (Pc, Pd, Ps, Pe, Pi, Pf, Po); symbol: S (Sm, Sc, Sk, So).
/// - whitespace: Unicode's White_Space property (U+0009…U+000D, U+0020, U+0085, U+00A0, U+1680,
///   U+2000…U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), the same 25 code points llama.cpp lists.
///
/// Every code point carries `defined` (llama.cpp's "flags are non-zero"), including unassigned ones;
/// only positions outside the text fragment have no flags.
///
/// Known divergence: categories come from the Swift runtime's Unicode tables, llama.cpp's from the
/// `UnicodeData.txt` its `gen-unicode-data.py` downloaded. Comparing every code point (Swift 6.3 vs
/// llama.cpp c392e50, test `PreTokenizerTests.testUnicodeClassesAgreeWithLlamaCppTablesExceptNewlyAssignedCodePoints`):
/// 9,895 code points differ, all of them unassigned in llama.cpp's older table and assigned in
/// Swift's (e.g. U+088F, U+20C1 SAUDI RIYAL SIGN). llama.cpp treats them as "other" (like punctuation);
/// here they get their real category, so text using characters that new can split differently.
/// Every code point assigned in both tables has the same letter/number/punctuation/symbol class.
enum CodepointClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let punctuation: UInt8 = 8
    static let symbol: UInt8 = 16
    static let defined: UInt8 = 0x80

    /// The classes of a code point.
    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        if v < 128 { return ascii[Int(v)] }
        return nonASCII(v)
    }

    private static let ascii: [UInt8] = (0..<128).map { computed(UInt32($0)) }

    @inline(never)
    private static func nonASCII(_ v: UInt32) -> UInt8 { computed(v) }

    static func computed(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return defined }  // surrogates: category Cs, "control"
        var f = defined
        if isWhitespace(v) { f |= whitespace }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            f |= punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            f |= symbol
        default:
            break
        }
        return f
    }

    /// Unicode's White_Space property.
    @inline(__always)
    static func isWhitespace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}
