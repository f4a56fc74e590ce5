/// Mutations of a GGUF model, structural and semantic. Each says whether it makes the file invalid by
/// construction (then every loader must refuse it), as llama.cpp's loader would: data ranges out of bounds,
/// misaligned, overlapping or of the wrong size for their type; counts beyond what the file holds; duplicate
/// keys or tensors; sizes that do not fit the tensors; ε, RoPE base or context that are not positive and finite;
/// token types out of range; non-finite weights.
enum GGUFMutations {
    /// One case: a base file (F32 or Q8_0), one or two structured mutations, sometimes a byte-level one.
    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        let quantised = r.chance(0.4)
        var image = GGUFImage(parsing: quantised ? fixtures.ggufQ8 : fixtures.ggufF32)
        let dataEnd = image.tensors.map { Int($0.offset) + (GGUFImage.byteCount(type: $0.type, dims: $0.dims) ?? 0) }.max() ?? 0
        var applied: [Applied] = [Applied(name: quantised ? "base=q8_0" : "base=f32", mustRefuse: false)]
        for _ in 0..<(r.chance(0.25) ? 2 : 1) where r.chance(0.85) && !applied.contains(where: \.mustRefuse) {
            applied.append(structural(&image, &r))  // a second edit only after an `either` one: it could undo a must-refuse one
        }
        var bytes = image.serialized()
        if applied.count == 1 || r.chance(0.3) { applied.append(byteLevel(&bytes, dataStart: bytes.count - image.data.count, dataEnd: dataEnd, &r)) }
        return FuzzCase(kind: .gguf, index: index, mutations: applied.map(\.name),
                        expectation: FuzzExpectation(applied),
                        files: ["model.gguf": bytes, "text.txt": fixtures.text],
                        // Without a tokenizer a model still loads (inspect) but cannot evaluate text.
                        commands: applied.contains { $0.name == "metadata-key-removed(tokenizer.ggml.model)" } ? [["inspect", "model.gguf"]]
                            : FuzzFixtures.loadCommands("model.gguf"))
    }

    /// Metadata keys without which the model cannot be built.
    /// (A missing context length defaults to 2048, as Lancet's importer has always done.)
    static let requiredSuffixes = [".block_count", ".embedding_length", ".feed_forward_length", ".attention.head_count",
                                   ".attention.layer_norm_rms_epsilon"]

    /// One mutation of the header's structure or values.
    static func structural(_ g: inout GGUFImage, _ r: inout FuzzRandom) -> Applied {
        let t = r.below(g.tensors.count)
        let name = g.tensors[t].name
        switch r.below(20) {
        case 0:
            var u = r.below(g.tensors.count)
            if u == t { u = (t + 1) % g.tensors.count }
            g.tensors[u].offset = g.tensors[t].offset
            return Applied(name: "tensor-offset-shared(\(g.tensors[u].name)=\(name))", mustRefuse: true)
        case 1:
            let offset = r.pick([UInt64(g.data.count), UInt64(g.data.count + 32 * (1 + r.below(8))), 1 << 40, UInt64.max - 31])
            g.tensors[t].offset = offset
            return Applied(name: "tensor-offset-out-of-bounds(\(name)=\(offset))", mustRefuse: true)
        case 2:
            g.tensors[t].offset &+= UInt64(1 + r.below(max(g.alignment - 1, 1)))
            return Applied(name: "tensor-offset-misaligned(\(name))", mustRefuse: true)
        case 3:
            let old = g.tensors[t].type
            var new = r.pick([0, 1, 30, 2, 3, 8, 6, 24, 4, 5, 99, 0x7FFF_FFFF] as [UInt32])
            if new == old { new = old == 0 ? 1 : 0 }
            g.tensors[t].type = new
            let oldSize = GGUFImage.byteCount(type: old, dims: g.tensors[t].dims)
            let newSize = GGUFImage.byteCount(type: new, dims: g.tensors[t].dims)
            return Applied(name: "tensor-type-relabelled(\(name):\(old)->\(new))", mustRefuse: newSize == nil || newSize != oldSize)
        case 4:
            let k = r.below(g.tensors[t].dims.count)
            let d = g.tensors[t].dims[k]
            let new = r.pick([d &* 2, d / 2, 0, d &+ 1, 1 << 32, 1 << 40, 1 << 62, UInt64.max])
            g.tensors[t].dims[k] = new == d ? d &+ 1 : new
            return Applied(name: "tensor-dim-changed(\(name)[\(k)]:\(d)->\(g.tensors[t].dims[k]))", mustRefuse: true)
        case 5:
            let dims = g.tensors[t].dims
            guard dims.count == 2, dims[0] != dims[1] else { return Applied(name: "tensor-dims-transposed(square:\(name))", mustRefuse: false) }
            g.tensors[t].dims = [dims[1], dims[0]]
            return Applied(name: "tensor-dims-transposed(\(name))", mustRefuse: true)
        case 6:
            g.tensors.remove(at: t)
            return Applied(name: "tensor-dropped(\(name))", mustRefuse: true)
        case 7:
            g.tensors.append(g.tensors[t])
            return Applied(name: "tensor-duplicated(\(name))", mustRefuse: true)
        case 8:
            g.tensors[t].name = r.pick([name + "x", "blk.99.attn_q.weight", "", String(repeating: "a", count: 70)])
            return Applied(name: "tensor-renamed(\(name)->\(g.tensors[t].name.prefix(24)))", mustRefuse: true)
        case 9:
            let real = UInt64(g.tensors.count)
            let count = r.pick([real + 1, real &- 1, 1 << 40, UInt64.max])
            g.tensorCountOverride = count
            return Applied(name: "tensor-count(\(real)->\(count))", mustRefuse: true)
        case 10:
            let real = UInt64(g.entries.count)
            let count = r.pick([real + 1, real &- 1, 1 << 40, UInt64.max])
            g.entryCountOverride = count
            return Applied(name: "metadata-count(\(real)->\(count))", mustRefuse: true)
        case 11:
            let e = g.entries[r.below(g.entries.count)]
            g.entries.append(e)
            return Applied(name: "metadata-key-duplicated(\(e.key))", mustRefuse: true)
        case 12:
            let i = r.below(g.entries.count)
            let key = g.entries[i].key
            g.entries.remove(at: i)
            let required = requiredSuffixes.contains { key.hasSuffix($0) } || key == "general.architecture" || key == "tokenizer.ggml.tokens"
                || key == "tokenizer.ggml.merges"
            return Applied(name: "metadata-key-removed(\(key))", mustRefuse: required)
        case 13: return hostileSize(&g, &r)
        case 14: return hostileFloat(&g, &r)
        case 15: return tokenizerValue(&g, &r)
        case 16: return nonFinite(&g, &r, tensor: t)
        case 17:
            let version = r.pick([0, 1, 4, 99, UInt32.max, 2] as [UInt32])
            g.version = version
            return Applied(name: "version(\(version))", mustRefuse: version != 2 && version != 3)
        case 18:
            let alignment = r.pick([0, 3, 7, 1 << 31, 64] as [UInt32])
            g.set("general.alignment", type: GGUFTag.u32, payload: ByteSink.u32(alignment))
            let misaligned = g.tensors.contains { alignment == 0 || $0.offset % UInt64(alignment) != 0 }
            return Applied(name: "alignment(\(alignment))", mustRefuse: alignment == 0 || alignment.nonzeroBitCount != 1 || misaligned)
        default:
            let i = r.below(g.entries.count)
            let key = g.entries[i].key
            guard g.entries[i].type != GGUFTag.string else {
                g.entries[i].type = GGUFTag.u32
                g.entries[i].payload = ByteSink.u32(7)
                return Applied(name: "metadata-type-changed(\(key):string->u32)", mustRefuse: key == "general.architecture" || key == "tokenizer.ggml.model")
            }
            let was = g.entries[i].type
            g.entries[i].type = GGUFTag.string
            g.entries[i].payload = ByteSink.string("2")
            let required = requiredSuffixes.contains { key.hasSuffix($0) } || key.hasPrefix("tokenizer.ggml.tokens")
                || key == "tokenizer.ggml.token_type" || key == "tokenizer.ggml.merges"
            return Applied(name: "metadata-type-changed(\(key):\(was)->string)", mustRefuse: required)
        }
    }

    /// A size key set to a value the tensors cannot have (zero, huge, off by one, not dividing).
    static func hostileSize(_ g: inout GGUFImage, _ r: inout FuzzRandom) -> Applied {
        let keys = [".block_count", ".embedding_length", ".feed_forward_length", ".attention.head_count", ".attention.head_count_kv"]
        let suffix = r.pick(keys)
        guard let i = g.entries.firstIndex(where: { $0.key.hasSuffix(suffix) && $0.type == GGUFTag.u32 }) else {
            return Applied(name: "no-u32-key(\(suffix))", mustRefuse: false)
        }
        let old = UInt64(ByteCursor.u32(g.entries[i].payload, 0))
        let value: UInt64 = r.pick([0, old + 1, old &- 1, 3, 1_000_000_000_000, UInt64(UInt32.max), 1 << 62])
        let new = value == old ? old + 1 : value
        if new > UInt64(UInt32.max) || r.chance(0.3) {
            g.entries[i].type = GGUFTag.u64
            g.entries[i].payload = ByteSink.u64(new)
        } else {
            g.entries[i].payload = ByteSink.u32(UInt32(new))
        }
        return Applied(name: "size(\(g.entries[i].key):\(old)->\(new))", mustRefuse: true)
    }

    /// ε, RoPE base or context length set to zero, negative, NaN or infinite (invalid), or to another positive value.
    static func hostileFloat(_ g: inout GGUFImage, _ r: inout FuzzRandom) -> Applied {
        switch r.below(3) {
        case 0, 1:
            let suffix = r.pick([".attention.layer_norm_rms_epsilon", ".rope.freq_base"])
            let value = r.pick([Float.nan, -1, 0, .infinity, -.infinity, 1e-3, 5e5] as [Float])
            let key = g.entries.first { $0.key.hasSuffix(suffix) }?.key ?? ("llama" + suffix)
            g.set(key, type: GGUFTag.f32, payload: ByteSink.f32(value))
            return Applied(name: "float(\(key)=\(value))", mustRefuse: !(value.isFinite && value > 0))
        default:
            guard let i = g.entries.firstIndex(where: { $0.key.hasSuffix(".context_length") && $0.type == GGUFTag.u32 }) else { return Applied(name: "no-context", mustRefuse: false) }
            let value = r.pick([0, 1, 16, 1 << 20] as [UInt32])
            g.entries[i].payload = ByteSink.u32(value)
            return Applied(name: "context-length(\(value))", mustRefuse: value == 0)
        }
    }

    /// Token types, special ids and vocabulary arrays out of range.
    static func tokenizerValue(_ g: inout GGUFImage, _ r: inout FuzzRandom) -> Applied {
        let vocabulary = FuzzFixtures.sizes.vocabulary
        switch r.below(3) {
        case 0:
            let element = r.below(vocabulary)
            let at = 12 + 4 * element  // element type u32, count u64, then i32 values
            guard let i = g.entryIndex("tokenizer.ggml.token_type"), g.entries[i].type == GGUFTag.array, g.entries[i].payload.count >= at + 4 else {
                return Applied(name: "no-token-types", mustRefuse: false)
            }
            let value = r.pick([999, -5, 7, 0x7FFF_FFFF] as [Int32])
            let v = ByteSink.u32(UInt32(bitPattern: value))
            for k in 0..<4 { g.entries[i].payload[at + k] = v[k] }
            return Applied(name: "token-type(\(element)=\(value))", mustRefuse: true)
        case 1:
            let key = r.pick(["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"])
            let value = r.pick([UInt32(vocabulary), UInt32(vocabulary + 100), UInt32.max])
            g.set(key, type: GGUFTag.u32, payload: ByteSink.u32(value))
            // 0xFFFFFFFF is -1 as an int32 token id: llama.cpp's "no such token".
            // llama.cpp warns and keeps the default id for an out-of-range special token; Lancet does the same.
            return Applied(name: "special-token-out-of-range(\(key)=\(value))", mustRefuse: false)
        default:
            let key = r.pick(["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"])
            guard let i = g.entryIndex(key), g.entries[i].type == GGUFTag.array, g.entries[i].payload.count >= 12 else {
                return Applied(name: "no-\(key)", mustRefuse: false)
            }
            let count = r.pick([1 << 40, UInt64.max, UInt64(1 << 31)])
            let v = ByteSink.u64(count)
            for k in 0..<8 { g.entries[i].payload[4 + k] = v[k] }
            return Applied(name: "array-count(\(key)=\(count))", mustRefuse: true)
        }
    }

    /// A NaN or infinity written into a weight: an F32 element, or the F16 scale of a Q8_0 block.
    static func nonFinite(_ g: inout GGUFImage, _ r: inout FuzzRandom, tensor t: Int) -> Applied {
        let info = g.tensors[t]
        guard info.offset < UInt64(g.data.count), info.dims.allSatisfy({ $0 < 1 << 20 }),
              let size = GGUFImage.byteCount(type: info.type, dims: info.dims), Int(info.offset) + size <= g.data.count, size > 0 else {
            return Applied(name: "non-finite(skipped:\(info.name))", mustRefuse: false)
        }
        let start = Int(info.offset)
        let special = r.pick(["nan", "inf", "-inf"])
        switch info.type {
        case 0:
            let elements = info.dims.reduce(1) { $0 * Int($1) }
            let at = start + 4 * r.below(elements)
            let value: Float = special == "nan" ? .nan : special == "inf" ? .infinity : -.infinity
            let v = ByteSink.f32(value)
            for k in 0..<4 { g.data[at + k] = v[k] }
        case 8:
            let blocks = info.dims.reduce(1) { $0 * Int($1) } / 32
            let at = start + 34 * r.below(blocks)
            let half: UInt16 = special == "nan" ? 0x7E00 : special == "inf" ? 0x7C00 : 0xFC00
            g.data[at] = UInt8(half & 0xFF)
            g.data[at + 1] = UInt8(half >> 8)
        default:
            return Applied(name: "non-finite(skipped:\(info.name))", mustRefuse: false)
        }
        return Applied(name: "non-finite-weight(\(info.name)=\(special))", mustRefuse: true)
    }

    /// A byte-level mutation of the serialised file: a truncation, appended bytes, or flipped bytes.
    /// `dataEnd` is where the base file's last tensor data ends, relative to `dataStart`.
    static func byteLevel(_ bytes: inout [UInt8], dataStart: Int, dataEnd: Int, _ r: inout FuzzRandom) -> Applied {
        switch r.below(4) {
        case 0:
            let size = bytes.count
            let cut = r.below(size)
            bytes.removeSubrange(cut...)
            // Bytes after the last tensor's data are padding: cutting only those leaves a loadable file.
            return Applied(name: "truncated(\(cut)/\(size))", mustRefuse: cut < dataStart + dataEnd)
        case 1:
            bytes += (0..<(1 + r.below(100))).map { _ in r.byte() }
            return Applied(name: "bytes-appended", mustRefuse: false)
        case 2:
            let n = 1 + r.below(4)
            for _ in 0..<n { bytes[r.below(dataStart)] ^= UInt8(1 + r.below(255)) }
            return Applied(name: "header-bytes-flipped(\(n))", mustRefuse: false)
        default:
            let n = 1 + r.below(16)
            for _ in 0..<n where bytes.count > dataStart { bytes[dataStart + r.below(bytes.count - dataStart)] ^= UInt8(1 + r.below(255)) }
            return Applied(name: "data-bytes-flipped(\(n))", mustRefuse: false)
        }
    }
}
