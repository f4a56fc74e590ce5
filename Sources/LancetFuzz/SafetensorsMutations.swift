/// Mutations of a Hugging Face folder's `model.safetensors`: its 8-byte header length, its JSON header
/// (entries `name: {dtype, shape, data_offsets}` and `__metadata__`) and its data. Invalid by construction, as
/// the safetensors format defines it: ranges out of bounds, reversed, overlapping or of the wrong size for
/// dtype × shape; duplicate or missing names; unknown dtypes; a header length beyond the file; non-finite weights.
enum SafetensorsMutations {
    /// The file taken apart.
    struct Image {
        var header: JSONText
        var data: [UInt8]
        var lengthOverride: UInt64?
        var extraHeaderText = ""

        init(_ bytes: [UInt8]) {
            let n = Int(ByteCursor.u64(bytes, 0))
            header = JSONText.parse(Array(bytes[8..<8 + n]))
            data = Array(bytes[(8 + n)...])
        }

        var tensorNames: [String] { header.keys.filter { $0 != "__metadata__" } }

        func serialized() -> [UInt8] {
            var text = header.text
            if !extraHeaderText.isEmpty { text.insert(contentsOf: extraHeaderText, at: text.index(before: text.endIndex)) }
            var h = Array(text.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            return ByteSink.u64(lengthOverride ?? UInt64(h.count)) + h + data
        }

        func offsets(_ name: String) -> (Int, Int)? {
            guard case let .array(o)? = header[name]?["data_offsets"], o.count == 2, case let .int(a) = o[0], case let .int(b) = o[1] else { return nil }
            return (a, b)
        }
    }

    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        var image = Image(fixtures.huggingFace["model.safetensors"]!)
        var applied = [mutate(&image, &r)]
        if !applied[0].mustRefuse && r.chance(0.25) { applied.append(mutate(&image, &r)) }  // never undo a must-refuse edit
        var bytes = image.serialized()
        if r.chance(0.15) { applied.append(Applied(name: TextEdits.mangle(&bytes, &r), mustRefuse: false)) }
        return fixtures.huggingFaceCase(.safetensors, index: index, applied: applied, replacing: "model.safetensors", with: bytes)
    }

    static func mutate(_ s: inout Image, _ r: inout FuzzRandom) -> Applied {
        let names = s.tensorNames
        let name = r.pick(names)
        switch r.below(13) {
        case 0:
            s.extraHeaderText = "," + JSONText.string(name).text + ":" + s.header[name]!.text
            return Applied(name: "key-duplicated(\(name))", mustRefuse: true)
        case 1:
            var other = r.pick(names)
            if other == name { other = names[(names.firstIndex(of: name)! + 1) % names.count] }
            guard let o = s.offsets(other), let mine = s.offsets(name), o.1 - o.0 == mine.1 - mine.0 else {
                s.header[name]!["data_offsets"] = s.header[other]!["data_offsets"]
                return Applied(name: "range-copied(\(name)=\(other))", mustRefuse: true)
            }
            s.header[name]!["data_offsets"] = .array([.int(o.0), .int(o.1)])
            return Applied(name: "range-shared(\(name)=\(other))", mustRefuse: true)
        case 2:
            guard let (a, b) = s.offsets(name) else { return Applied(name: "no-offsets", mustRefuse: false) }
            let shift = r.pick([s.data.count, 4, -4, 1 << 40, s.data.count - a])
            s.header[name]!["data_offsets"] = .array([.int(a + shift), .int(b + shift)])
            return Applied(name: "range-moved(\(name)+\(shift))", mustRefuse: shift != 0)
        case 3:
            guard let (a, b) = s.offsets(name) else { return Applied(name: "no-offsets", mustRefuse: false) }
            s.header[name]!["data_offsets"] = r.pick([.array([.int(b), .int(a)]), .array([.int(a)]), .array([.int(a), .int(b), .int(b)]),
                                                      .array([.int(-8), .int(b)]), .string("0"), .array([.number(0.5), .int(b)])])
            return Applied(name: "range-malformed(\(name))", mustRefuse: true)
        case 4:
            let dtype = r.pick(["F16", "BF16", "I64", "F64", "U8", "F33", "", "f32"])
            s.header[name]!["dtype"] = .string(dtype)
            return Applied(name: "dtype(\(name)=\(dtype))", mustRefuse: true)
        case 5:
            guard case let .array(shape)? = s.header[name]?["shape"] else { return Applied(name: "no-shape", mustRefuse: false) }
            var dims = shape.compactMap { if case let .int(i) = $0 { return i } else { return nil } }
            let k = r.below(dims.count)
            let choice = r.below(5)
            switch choice {
            case 0: dims[k] *= 2
            case 1: dims[k] = 0
            case 2: dims[k] = -dims[k]
            case 3: dims.append(2)
            default: dims.reverse()
            }
            let same = choice == 4 && dims == dims.reversed()
            s.header[name]!["shape"] = .array(dims.map(JSONText.int))
            return Applied(name: "shape(\(name)=\(dims))", mustRefuse: !same)
        case 6:
            s.header[name] = nil
            return Applied(name: "tensor-removed(\(name))", mustRefuse: true)
        case 7:
            let n = s.data.count
            s.data += Array(repeating: 0, count: 64 * 4)
            s.header["model.layers.0.self_attn.extra.weight"] = .object([("dtype", .string("F32")), ("shape", .array([.int(64)])),
                                                                        ("data_offsets", .array([.int(n), .int(n + 256)]))])
            return Applied(name: "tensor-added(unknown name)", mustRefuse: true)
        case 8:
            let length = r.pick([UInt64(0), 1 << 40, UInt64.max, 7, UInt64(s.data.count) << 4])
            s.lengthOverride = length
            return Applied(name: "header-length(\(length))", mustRefuse: true)
        case 9:
            guard let (a, b) = s.offsets(name), a >= 0, b > a + 3, b <= s.data.count, s.header[name]?["dtype"].map({ $0.text == "\"F32\"" }) == true else {
                return Applied(name: "no-f32", mustRefuse: false)
            }
            let at = a + 4 * r.below((b - a) / 4)
            let value = r.pick([Float.nan, .infinity, -.infinity])
            let v = ByteSink.f32(value)
            for k in 0..<4 { s.data[at + k] = v[k] }
            return Applied(name: "non-finite-weight(\(name)=\(value))", mustRefuse: true)
        case 10:
            s.header["__metadata__"] = r.pick([.object([("format", .int(1))]), .string("x"), .object([("a", JSONText.nested(100_000))]),
                                               .object([("format", .string("pt"))])])
            let ok = s.header["__metadata__"]!.text == "{\"format\":\"pt\"}"
            return Applied(name: "metadata(\(s.header["__metadata__"]!.text.prefix(30)))", mustRefuse: !ok)
        case 11:
            let cut = r.below(s.data.count)
            s.data.removeSubrange(cut...)
            return Applied(name: "data-truncated(\(cut))", mustRefuse: true)
        default:
            s.header[name]![r.pick(["dtype", "shape", "data_offsets"])] = JSONText.hostile(&r)
            return Applied(name: "field-hostile(\(name))", mustRefuse: true)
        }
    }
}

extension Dictionary {
    /// The same values under transformed keys.
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] { Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) }) }
}
