/// The scanners behind `PreTokenizer`: each takes the end indices of the pieces of a previous split
/// and returns the end indices of the finer split. Positions are indices into the scalar buffer;
/// a scanner never looks across a piece's end (llama.cpp's `OUT_OF_RANGE`).
struct PreTokenizerScanner {
    let cp: UnsafeBufferPointer<UInt32>
    let cl: UnsafeBufferPointer<UInt8>

    private typealias C = CodepointClass
    private static let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A
    private static let outOfRange: UInt32 = 0xFFFF_FFFF

    /// Splits off every code point whose classes satisfy `mask` as a word of its own (`\p{N}`).
    func isolateEach(_ pieces: [Int], _ mask: UInt8) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(pieces.count * 2)
        var start = 0
        for end in pieces {
            var prev = start
            for i in start..<end where cl[i] & mask != 0 {
                if i > prev { out.append(i) }
                out.append(i + 1)
                prev = i + 1
            }
            if end > prev { out.append(end) }
            start = end
        }
        return out
    }

    /// Splits off maximal runs of code points satisfying `member` (`[class]+`).
    func isolateRuns(_ pieces: [Int], _ member: (UInt32, UInt8) -> Bool) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(pieces.count * 2)
        var start = 0
        for end in pieces {
            var i = start
            var prev = start
            while i < end {
                guard member(cp[i], cl[i]) else { i += 1; continue }
                if i > prev { out.append(i) }
                while i < end && member(cp[i], cl[i]) { i += 1 }
                out.append(i)
                prev = i
            }
            if end > prev { out.append(end) }
            start = end
        }
        return out
    }

    /// Splits off each group of three ASCII digits, scanning left to right (`[0-9][0-9][0-9]`).
    func isolateDigitTriples(_ pieces: [Int]) -> [Int] {
        @inline(__always) func digit(_ i: Int) -> Bool { cp[i] >= 0x30 && cp[i] <= 0x39 }
        var out: [Int] = []
        out.reserveCapacity(pieces.count)
        var start = 0
        for end in pieces {
            var i = start
            var prev = start
            while i + 3 <= end {
                if digit(i) && digit(i + 1) && digit(i + 2) {
                    if i > prev { out.append(i) }
                    out.append(i + 3)
                    i += 3
                    prev = i
                } else {
                    i += 1
                }
            }
            if end > prev { out.append(end) }
            start = end
        }
        return out
    }

    /// GPT-2's regex `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`,
    /// with llama.cpp's behaviour where its scanner and the regex differ.
    func gpt2(_ pieces: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(pieces.count + (pieces.last ?? 0) / 3)
        var start = 0
        for end in pieces {
            @inline(__always) func code(_ p: Int) -> UInt32 { p < end ? cp[p] : Self.outOfRange }
            @inline(__always) func cls(_ p: Int) -> UInt8 { p < end ? cl[p] : 0 }
            var pos = start
            while pos < end {
                let c = cp[pos]
                // 's|'t|'re|'ve|'m|'ll|'d
                if c == Self.apostrophe && pos + 1 < end {
                    let n = cp[pos + 1]
                    if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 {  // s t m d
                        pos += 2
                        out.append(pos)
                        continue
                    }
                    if pos + 2 < end {
                        let nn = cp[pos + 2]
                        if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {  // re ve ll
                            pos += 3
                            out.append(pos)
                            continue
                        }
                    }
                }
                let lead = c == Self.space ? 1 : 0
                let f2 = lead == 1 ? cls(pos + 1) : cl[pos]
                // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
                if f2 & C.letter != 0 {
                    pos += lead
                    while cls(pos) & C.letter != 0 { pos += 1 }
                    out.append(pos)
                    continue
                }
                if f2 & C.number != 0 {
                    pos += lead
                    while cls(pos) & C.number != 0 { pos += 1 }
                    out.append(pos)
                    continue
                }
                let wordy = C.whitespace | C.letter | C.number
                if f2 & wordy == 0 && f2 != 0 {
                    pos += lead
                    while true {
                        let f = cls(pos)
                        guard f & wordy == 0 && f != 0 else { break }
                        pos += 1
                    }
                    out.append(pos)
                    continue
                }
                // "\s+(?!\S)", then "\s+"
                var n = 0
                while cls(pos + n) & C.whitespace != 0 { n += 1 }
                if n > 1 && code(pos + n) != Self.outOfRange {
                    pos += n - 1
                } else if n > 0 {
                    pos += n
                } else {
                    pos += 1
                }
                out.append(pos)
            }
            start = end
        }
        return out
    }

    /// Llama 3's regex `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (Qwen 2's with `maxDigits` 1).
    func llama3(_ pieces: [Int], maxDigits: Int) -> [Int] {
        @inline(__always) func lower(_ v: UInt32) -> UInt32 { v >= 0x41 && v <= 0x5A ? v + 0x20 : v }
        var out: [Int] = []
        out.reserveCapacity(pieces.count + (pieces.last ?? 0) / 3)
        var start = 0
        for end in pieces {
            @inline(__always) func code(_ p: Int) -> UInt32 { p < end ? cp[p] : Self.outOfRange }
            @inline(__always) func cls(_ p: Int) -> UInt8 { p < end ? cl[p] : 0 }
            var pos = start
            while pos < end {
                let c = cp[pos]
                let f = cl[pos]
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if c == Self.apostrophe && pos + 1 < end {
                    let n = lower(cp[pos + 1])
                    if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 {
                        pos += 2
                        out.append(pos)
                        continue
                    }
                    if pos + 2 < end {
                        let nn = lower(cp[pos + 2])
                        if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {
                            pos += 3
                            out.append(pos)
                            continue
                        }
                    }
                }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if !(c == Self.cr || c == Self.lf || f & C.number != 0) {
                    if f & C.letter != 0 || cls(pos + 1) & C.letter != 0 {
                        pos += 1
                        while cls(pos) & C.letter != 0 { pos += 1 }
                        out.append(pos)
                        continue
                    }
                }
                // \p{N}{1,maxDigits}
                if f & C.number != 0 {
                    var groupStart = pos
                    while cls(pos) & C.number != 0 {
                        pos += 1
                        if pos - groupStart >= maxDigits {
                            out.append(pos)
                            groupStart = pos
                        }
                    }
                    if pos > groupStart { out.append(pos) }
                    continue
                }
                // " ?[^\s\p{L}\p{N}]+[\r\n]*" (llama.cpp tests the first code point's own flags for
                // being defined, so a lone space at a piece's end also lands here, as one word)
                let wordy = C.whitespace | C.letter | C.number
                let lead = c == Self.space ? 1 : 0
                let f2 = lead == 1 ? cls(pos + 1) : f
                if f2 & wordy == 0 && f != 0 {
                    pos += lead
                    while true {
                        let g = cls(pos)
                        guard g & wordy == 0 && g != 0 else { break }
                        pos += 1
                    }
                    while code(pos) == Self.cr || code(pos) == Self.lf { pos += 1 }
                    out.append(pos)
                    continue
                }
                // \s*[\r\n]+, \s+(?!\S), \s+
                var n = 0
                var lastLineBreakEnd = -1
                while cls(pos + n) & C.whitespace != 0 {
                    let w = cp[pos + n]
                    if w == Self.cr || w == Self.lf { lastLineBreakEnd = pos + n + 1 }
                    n += 1
                }
                if lastLineBreakEnd >= 0 {
                    pos = lastLineBreakEnd
                } else if n > 1 && code(pos + n) != Self.outOfRange {
                    pos += n - 1
                } else if n > 0 {
                    pos += n
                } else {
                    pos += 1
                }
                out.append(pos)
            }
            start = end
        }
        return out
    }
}
