extension Tokenizer {
    /// A piece of the input after special tokens are matched: raw text (a byte range) or a token.
    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// The token ids of `text`, as llama.cpp's `llama_tokenize` gives them.
    ///
    /// - Parameters:
    ///   - addSpecialTokens: prepend `bos` / append `eos` when the source asks for it
    ///     (`addBOS`, `addEOS`; SmolLM2 adds neither).
    ///   - parseSpecial: recognise control tokens (`<|im_start|>`) written in the text. User-defined
    ///     tokens are recognised either way, as in llama.cpp.
    public func encode(_ text: String, addSpecialTokens: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        let bytes = Array(text.utf8)
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 2)
        if addSpecialTokens && addBOS, let bos { out.append(bos) }
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        var previousWasSpecial = true
        for fragment in partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case let .token(id):
                out.append(id)
                previousWasSpecial = true
            case let .text(range):
                switch kind {
                case .byteLevelBPE:
                    encodeByteLevel(bytes, range, into: &out, cache: &cache)
                case .sentencePieceBPE:
                    encodeSentencePiece(bytes[range], spacePrefix: addSpacePrefix && previousWasSpecial, into: &out)
                }
                previousWasSpecial = false
            }
        }
        if addSpecialTokens && addEOS, let eos { out.append(eos) }
        return out
    }

    /// Splits `bytes` at occurrences of special tokens, as llama.cpp's `tokenizer_st_partition`:
    /// each special token in turn (longest text first) is searched for in the text fragments left by
    /// the previous ones. Control and unknown tokens take part only when `parseSpecial` is true.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        if bytes.isEmpty { return [] }
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        bytes.withUnsafeBufferPointer { hay in
            for st in specialTokens {
                if !parseSpecial && (st.type == .control || st.type == .unknown) { continue }
                var next: [Fragment] = []
                var changed = false
                for f in fragments {
                    guard case let .text(r) = f else { next.append(f); continue }
                    var lo = r.lowerBound
                    let hi = r.upperBound
                    while let m = Self.find(st.bytes, in: hay, lo..<hi) {
                        changed = true
                        var leftEnd = m
                        if st.leftStrip { while leftEnd > lo && Self.isASCIISpace(hay[leftEnd - 1]) { leftEnd -= 1 } }
                        if leftEnd > lo { next.append(.text(lo..<leftEnd)) }
                        next.append(.token(st.id))
                        lo = m + st.bytes.count
                        if st.rightStrip { while lo < hi && Self.isASCIISpace(hay[lo]) { lo += 1 } }
                    }
                    if lo < hi { next.append(.text(lo..<hi)) }
                }
                if changed { fragments = next }
            }
        }
        return fragments
    }

    /// C's `isspace` in the "C" locale, which llama.cpp uses for lstrip/rstrip.
    @inline(__always)
    static func isASCIISpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// The first occurrence of `needle` within `range` of `hay`.
    static func find(_ needle: [UInt8], in hay: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        let n = needle.count
        guard n > 0, range.count >= n else { return nil }
        let first = needle[0]
        var i = range.lowerBound
        let last = range.upperBound - n
        return needle.withUnsafeBufferPointer { nd in
            while i <= last {
                if hay[i] == first {
                    var k = 1
                    while k < n && hay[i + k] == nd[k] { k += 1 }
                    if k == n { return i }
                }
                i += 1
            }
            return nil
        }
    }

    /// Byte-level BPE of one text fragment: pre-tokenise into words, then merge each word's bytes.
    /// Words repeat a lot in running text, so each distinct word is merged once per `encode` call.
    func encodeByteLevel(
        _ bytes: [UInt8], _ range: Range<Int>, into out: inout [Int32], cache: inout [ArraySlice<UInt8>: [Int32]]
    ) {
        guard let preTokenizer else { return }
        // Decode the fragment's scalars (the input is valid UTF-8: it came from a String).
        var scalars: [UInt32] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(range.count)
        offsets.reserveCapacity(range.count + 1)
        bytes.withUnsafeBufferPointer { b in
            var i = range.lowerBound
            while i < range.upperBound {
                offsets.append(i)
                let c = UInt32(b[i])
                if c < 0x80 {
                    scalars.append(c); i += 1
                } else if c < 0xE0 {
                    scalars.append((c & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F)); i += 2
                } else if c < 0xF0 {
                    scalars.append((c & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F)); i += 3
                } else {
                    scalars.append((c & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6
                        | UInt32(b[i + 3] & 0x3F)); i += 4
                }
            }
            offsets.append(range.upperBound)
        }
        let classes = scalars.map(CodepointClass.of)
        let ends = scalars.withUnsafeBufferPointer { cp in
            classes.withUnsafeBufferPointer { cl in preTokenizer.wordEnds(cp, cl) }
        }
        var start = 0
        for end in ends {
            let word = bytes[offsets[start]..<offsets[end]]
            start = end
            if let known = cache[word] {
                out.append(contentsOf: known)
                continue
            }
            let ids = mergeWord(word)
            cache[word] = ids
            out.append(contentsOf: ids)
        }
    }

    /// The tokens of one pre-tokenised word (its UTF-8 bytes).
    func mergeWord(_ word: ArraySlice<UInt8>) -> [Int32] {
        if ignoreMerges, let whole = idByText[ByteUnicodeMapping.encode(word)] { return [whole] }
        var symbols = word.map { byteTokens[Int($0)] }
        merger.merge(&symbols)
        // A byte whose character is missing from the vocabulary cannot be spelled; llama.cpp drops it.
        symbols.removeAll { $0 < 0 }
        return symbols
    }

    /// SentencePiece BPE of one text fragment, as llama.cpp's `llm_tokenizer_spm_session`: spaces
    /// become `▁`, every character starts as a symbol, pieces merge by score, and characters that
    /// are not tokens are spelled with `<0xNN>` byte tokens.
    ///
    /// Divergence: llama.cpp may fuse a character that is not itself a token with a neighbour when
    /// their concatenation is a token; here such a character never merges and is spelled in bytes.
    func encodeSentencePiece(_ text: ArraySlice<UInt8>, spacePrefix: Bool, into out: inout [Int32]) {
        var raw = spacePrefix ? [UInt8(0x20)] : []
        raw.append(contentsOf: text)
        let escaped = String(decoding: raw, as: UTF8.self).replacingScalar(" ", with: "\u{2581}")
        var charIDs: [UInt32: Int32] = [:]
        var symbols: [Int32] = []
        symbols.reserveCapacity(raw.count)
        for s in escaped.unicodeScalars {
            if let id = charIDs[s.value] {
                symbols.append(id)
                continue
            }
            let id = idByText[String(s)] ?? -1 - Int32(s.value)
            charIDs[s.value] = id
            symbols.append(id)
        }
        merger.merge(&symbols)
        for id in symbols {
            if id >= 0 {
                out.append(id)
                continue
            }
            let scalar = Unicode.Scalar(UInt32(-(id + 1)))!
            for b in String(scalar).utf8 {
                let t = byteTokens[Int(b)]
                if t >= 0 { out.append(t) } else if let unk { out.append(unk) }
            }
        }
    }
}
