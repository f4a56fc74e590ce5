import Foundation

extension ModelFileSummary {
    /// How the first line names each format.
    static let formatNames = ["gguf": "GGUF", "lancet": "Lancet archive", "lancet-safetensors": "Lancet archive (safetensors)", "safetensors": "safetensors"]

    /// The human-readable report: one screen of facts (under 30 lines for a Llama-family model), and with
    /// `tensorTable` every tensor in natural order (`TensorNameOrder`) with aligned columns. `provenanceLine`
    /// replaces the default "N record(s)" description of the provenance.
    public func render(tensorTable: Bool = false, provenanceLine: String? = nil) -> String {
        var lines: [String] = []
        func add(_ label: String, _ value: String) { lines.append((label + ":").padding(15) + value) }
        add("file", "\(path) (\(Self.formatNames[format] ?? format)\(fileBytes.map { ", " + Self.humanBytes($0) } ?? ""))")
        add("architecture", architecture + (name.map { "  (\($0))" } ?? ""))
        add("file type", (fileType ?? "unknown") + String(format: ", %.2f bits per weight", bitsPerWeight)
            + " (\(Self.humanBytes(tensorBytes)) of tensor data)")
        add("tensors", "\(tensors.count): " + typeCounts)
        add("parameters", "\(parameterCount) (\(Self.humanCount(parameterCount)))")
        add("zero weights", zeroShareText)
        add("blocks", String(blocks))
        add("hidden", String(hiddenSize))
        if heads.count <= 1 && kvHeads.count <= 1 {
            add("heads", "\(Self.perBlock(heads))   KV heads: \(Self.perBlock(kvHeads))")
        } else {
            add("heads", Self.perBlock(heads))
            add("KV heads", Self.perBlock(kvHeads))
        }
        add("FFN width", Self.perBlock(ffnWidth))
        if let lowRankLinears, lowRankLinears > 0 { add("low-rank", "\(lowRankLinears) linears held as two factors") }
        if let sharedTensors, sharedTensors > 0 { add("shared", "\(sharedTensors) tensors shared by several blocks, stored once") }
        add("vocabulary", String(vocabularySize))
        if let c = contextLength { add("context", String(c)) }
        if let ropeTheta { add("RoPE θ", String(format: "%g", ropeTheta)) }
        if let rmsEpsilon { add("RMS ε", String(format: "%g", rmsEpsilon)) }
        if let k = tokenizerKind { add("tokenizer", k + (tokenizerVocabularySize.map { ", \($0) tokens" } ?? "") + specialTokensText) }
        add("chat template", chatTemplateFamily ?? "none")
        if let tiedEmbeddings {
            add("embeddings", tiedEmbeddings ? "tied (the output layer reuses the token embedding)" : "untied (a separate output matrix)")
        }
        add("provenance", provenanceLine ?? (provenance.isEmpty ? "none" : "\(provenance.count) record(s)"))
        if tensorTable {
            lines.append("")
            lines.append(contentsOf: tensorTableLines)
        }
        return lines.joined(separator: "\n")
    }

    /// Every tensor in natural order: name, type, shape, elements, bytes and share of zeros, columns aligned.
    public var tensorTableLines: [String] {
        let ordered = tensors.sorted { TensorNameOrder.precedes($0.name, $1.name) }
        let header = ["NAME", "TYPE", "SHAPE", "ELEMENTS", "BYTES", "ZEROS"]
        let rows = ordered.map { t in
            [t.name, t.type, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.elementCount), String(t.bytes),
             t.zeros.map { Self.percent($0, of: t.elementCount) } ?? "n/a"]
        }
        let widths = header.indices.map { c in rows.reduce(header[c].count) { max($0, $1[c].count) } }
        let rightAligned: Set<Int> = [3, 4, 5]
        return ([header] + rows).map { row in
            row.indices.map { c in
                let pad = String(repeating: " ", count: widths[c] - row[c].count)
                return rightAligned.contains(c) ? pad + row[c] : row[c] + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }

    /// `Q4_1 210, F32 61, Q8_0 1`: tensors per storage type, most first.
    var typeCounts: String {
        var counts: [String: Int] = [:]
        for t in tensors { counts[t.type, default: 0] += 1 }
        return counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// The share of exact zeros in the blocks' weight matrices and in all parameters.
    var zeroShareText: String {
        let block = blockMatrixZeros, all = allZeros
        var text = block.elements > 0
            ? "\(Self.percent(block.zeros, of: block.elements)) of the blocks' matrices (\(Self.humanCount(block.zeros)) of \(Self.humanCount(block.elements))); "
            : ""
        text += "\(Self.percent(all.zeros, of: all.elements)) of all parameters"
        let unread = unreadTensors.count
        if unread > 0 { text += " (\(unread) tensor(s) of unreadable types not counted)" }
        return text
    }

    /// `; BOS 1 '<|im_start|>' (not added), EOS 2 '<|im_end|>'`.
    var specialTokensText: String {
        func show(_ t: SpecialToken) -> String { "\(t.id)" + (t.text.map { " '\($0)'" } ?? "") }
        var parts: [String] = []
        if let bos { parts.append("BOS " + show(bos) + (addsBOS.map { $0 ? " (added)" : " (not added)" } ?? "")) }
        if let eos { parts.append("EOS " + show(eos)) }
        return parts.isEmpty ? "" : "; " + parts.joined(separator: ", ")
    }

    /// One value when all blocks agree; else runs with their block ranges: `1536 (0), 1472 (1–28), 1536 (29)`.
    static func perBlock(_ values: [Int]) -> String {
        if values.isEmpty { return "unknown" }
        if Set(values).count == 1 { return String(values[0]) }
        var runs: [(value: Int, first: Int, last: Int)] = []
        for (i, v) in values.enumerated() {
            if let last = runs.last, last.value == v { runs[runs.count - 1].last = i } else { runs.append((v, i, i)) }
        }
        return "per block " + runs.map { "\($0.value) (\($0.first == $0.last ? "\($0.first)" : "\($0.first)–\($0.last)"))" }.joined(separator: ", ")
    }

    /// `12.34%`.
    static func percent(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "n/a" : String(format: "%.2f%%", 100 * Double(part) / Double(whole))
    }

    /// `1.23 M`-style counts.
    public static func humanCount(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1e9 { return format2(d / 1e9) + " B" }
        if d >= 1e6 { return format2(d / 1e6) + " M" }
        if d >= 1e3 { return format2(d / 1e3) + " K" }
        return String(n)
    }

    /// `93.8 MiB`-style sizes.
    public static func humanBytes(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1_073_741_824 { return format2(d / 1_073_741_824) + " GiB" }
        if d >= 1_048_576 { return format2(d / 1_048_576) + " MiB" }
        if d >= 1024 { return format2(d / 1024) + " KiB" }
        return "\(n) B"
    }

    /// At most two decimals.
    static func format2(_ v: Double) -> String { String((v * 100).rounded() / 100) }
}

extension String {
    /// The string padded with spaces to at least `width` characters.
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
