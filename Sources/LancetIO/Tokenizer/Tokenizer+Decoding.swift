extension Tokenizer {
    /// The bytes `ids` render as, concatenated (llama.cpp's `token_to_piece` with special rendering).
    ///
    /// - Parameter skipSpecialTokens: render control and unknown tokens as nothing.
    /// SentencePiece tokenizers that add a space prefix drop one leading space of the first token
    /// (after a leading `bos`, when that is skipped), as llama.cpp's `detokenize` does.
    /// Ids outside the vocabulary render as nothing.
    public func decodeBytes(_ ids: [Int32], skipSpecialTokens: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        var ids = ids[...]
        if skipSpecialTokens, addBOS, let bos, ids.first == bos { ids = ids.dropFirst() }
        var stripSpace = addSpacePrefix
        for id in ids {
            guard id >= 0 && Int(id) < pieces.count else { stripSpace = false; continue }
            let type = tokenTypes[Int(id)]
            if skipSpecialTokens && (type == .control || type == .unknown) { stripSpace = false; continue }
            let p = pieces[Int(id)]
            if stripSpace && p.first == 0x20 { out.append(contentsOf: p.dropFirst()) } else { out.append(contentsOf: p) }
            stripSpace = false
        }
        return out
    }

    /// The text `ids` decode to; byte sequences that are not valid UTF-8 become U+FFFD.
    /// For byte-level BPE, `decode(encode(s, addSpecialTokens: false)) == s` for every string.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }

    /// A decoder for generation that turns tokens into text one at a time, holding back an
    /// incomplete UTF-8 sequence until the token that completes it arrives.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}
