/// Mutations of a Lancet archive in a safetensors file (`model.safetensors` beside nothing else): the safetensors
/// layer (header, ranges, dtypes, data, as `SafetensorsMutations` makes them) and the archive's own metadata — the IR
/// (nodes, values, attributes, parameter lists, the configuration), the format version, parameter aliases, the
/// provenance, the tokenizer's tagged JSON — and its masks (values other than 0 and 1). Invalid by construction.
enum ArchiveMutations {
    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        var image = SafetensorsMutations.Image(fixtures.archive)
        var applied = [r.chance(0.5) ? mutateArchive(&image, &r) : mutateContainer(&image, &r)]
        if !applied[0].mustRefuse && r.chance(0.25) { applied.append(mutateArchive(&image, &r)) }  // never undo a must-refuse edit
        var bytes = image.serialized()
        if r.chance(0.1) { applied.append(Applied(name: TextEdits.mangle(&bytes, &r), mustRefuse: false)) }
        return FuzzCase(kind: .archive, index: index, mutations: applied.map(\.name), expectation: FuzzExpectation(applied),
                        files: ["model.safetensors": bytes, "text.txt": fixtures.text], commands: FuzzFixtures.loadCommands("model.safetensors"))
    }

    /// A safetensors-level mutation; storing a mask as U8 (what it already is) changes nothing.
    static func mutateContainer(_ s: inout SafetensorsMutations.Image, _ r: inout FuzzRandom) -> Applied {
        let applied = SafetensorsMutations.mutate(&s, &r)
        let unchanged = s.tensorNames.contains { $0.hasSuffix(".mask") && applied.name == "dtype(\($0)=U8)" }
        return unchanged ? Applied(name: applied.name, mustRefuse: false) : applied
    }

    static func mutateArchive(_ s: inout SafetensorsMutations.Image, _ r: inout FuzzRandom) -> Applied {
        guard var metadata = s.header["__metadata__"], case let .string(irText)? = metadata["lancet.archive.ir"] else {
            return Applied(name: "no-ir", mustRefuse: false)
        }
        var ir = JSONText.parse(Array(irText.utf8))
        var applied: Applied
        switch r.below(10) {
        case 0, 1, 2:
            applied = mutateBlock(&ir, &r)
        case 3:
            // Every replacement is invalid for its key: a string ε must not parse as a positive finite number, the
            // architecture (any string is one) gets a value that is not a string.
            let key = r.pick(["hidden", "vocabulary", "context", "eps", "rope", "architecture"])
            let value: JSONText = switch key {
            case "context": r.pick([.int(0), .int(-1), .string("2048")])
            case "eps": r.pick([.string("0"), .string("-1e-5"), .string("nan"), .string("inf"), .string("1e-5x"), .number(1e-5)])
            case "architecture": r.pick([.int(0), .null, .array([])])
            default: JSONText.hostile(&r)
            }
            ir["config"]![key] = value
            applied = Applied(name: "config(\(key)=\(value.text.prefix(24)))", mustRefuse: true)
        case 4:
            ir[r.pick(["config", "blocks"])] = nil
            applied = Applied(name: "ir-section-removed", mustRefuse: true)
        case 5:
            metadata["lancet.archive.version"] = r.pick([.string("2"), .string("0"), .string("one"), .int(1)])
            applied = Applied(name: "version(\(metadata["lancet.archive.version"]!.text))", mustRefuse: true)
        case 6:
            let target = r.pick(["blocks.9.attn.q.weight", "blocks.1.attn.q.weight", "embedding"])
            metadata["lancet.archive.aliases"] = .string(r.pick([#"{"blocks.0.attn.q.weight": "\#(target)"}"#, "[]", "{"]))
            applied = Applied(name: "aliases(\(metadata["lancet.archive.aliases"]!.text.prefix(40)))", mustRefuse: true)
        case 7:
            metadata["lancet.provenance"] = .string(r.pick(["{}", "[1]", "[\"a\"", ""]))
            applied = Applied(name: "provenance(\(metadata["lancet.provenance"]!.text))", mustRefuse: true)
        case 8:
            guard case let .string(tokenizer)? = metadata["lancet.tokenizer"] else { return Applied(name: "no-tokenizer", mustRefuse: false) }
            let edit = r.below(3)
            let edited = switch edit {
            case 0: String(decoding: tokenizer.utf8.prefix(r.below(tokenizer.utf8.count)), as: UTF8.self)
            case 1: tokenizer.replacingFirst(#""type":"string""#, with: #""type":"uint8""#)
            default: tokenizer.replacingFirst(#""type":"array""#, with: #""type":"arrays""#)
            }
            metadata["lancet.tokenizer"] = .string(edited)
            applied = Applied(name: "tokenizer-json(\(edit))", mustRefuse: true)
        default:
            guard let mask = s.tensorNames.first(where: { $0.hasSuffix(".mask") }), let (a, b) = s.offsets(mask), a >= 0, b <= s.data.count, b > a else {
                return Applied(name: "no-mask", mustRefuse: false)
            }
            let value = r.pick([UInt8(2), 255, 7])
            s.data[a + r.below(b - a)] = value
            applied = Applied(name: "mask-value(\(mask)=\(value))", mustRefuse: true)
        }
        metadata["lancet.archive.ir"] = .string(ir.text)
        s.header["__metadata__"] = metadata
        return applied
    }

    /// An edit of one block of the IR: a node removed, an input renamed, an attribute of the wrong kind, a parameter
    /// listed that the file lacks or one left out, an op kind no registry knows.
    static func mutateBlock(_ ir: inout JSONText, _ r: inout FuzzRandom) -> Applied {
        guard case var .array(blocks)? = ir["blocks"], !blocks.isEmpty else { return Applied(name: "no-blocks", mustRefuse: false) }
        let b = r.below(blocks.count)
        var block = blocks[b]
        guard case var .array(nodes)? = block["nodes"], case var .array(parameters)? = block["parameters"], !nodes.isEmpty, !parameters.isEmpty else {
            return Applied(name: "no-nodes", mustRefuse: false)
        }
        let n = r.below(nodes.count)
        let applied: Applied
        switch r.below(6) {
        case 0:
            nodes.remove(at: n)
            applied = Applied(name: "node-removed(\(b).\(n))", mustRefuse: true)
        case 1:
            nodes[n]["inputs"] = .array([.string("%nowhere")])
            applied = Applied(name: "input-undefined(\(b).\(n))", mustRefuse: true)
        case 2:
            guard let key = nodes[n]["attributes"]?.keys.first else { return Applied(name: "no-attributes", mustRefuse: false) }
            nodes[n]["attributes"]![key] = r.pick([.object([("int", .string("x"))]), .object([("float", .int(1))]), .int(3), .object([])])
            applied = Applied(name: "attribute(\(b).\(n).\(key))", mustRefuse: true)
        case 3:
            parameters.append(.string("attn.extra.weight"))
            applied = Applied(name: "parameter-missing(\(b))", mustRefuse: true)
        case 4:
            parameters.remove(at: r.below(parameters.count))
            applied = Applied(name: "parameter-unlisted(\(b))", mustRefuse: true)
        default:
            nodes[n]["kind"] = .string(r.pick(["linear2", "", "rmsnorm\u{0}"]))
            applied = Applied(name: "kind(\(b).\(n))", mustRefuse: true)
        }
        block["nodes"] = .array(nodes)
        block["parameters"] = .array(parameters)
        blocks[b] = block
        ir["blocks"] = .array(blocks)
        return applied
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
