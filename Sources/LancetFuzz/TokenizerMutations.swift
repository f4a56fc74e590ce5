/// Mutations of a Hugging Face folder's `tokenizer.json` (a byte-level BPE model: `model.vocab`, `model.merges`,
/// `added_tokens`, `pre_tokenizer`, `decoder`). Invalid by construction: ids beyond the model's embedding, two
/// tokens with one id, merges of tokens that are not in the vocabulary or not pairs, an unknown model type, a
/// file that is not a JSON object.
enum TokenizerMutations {
    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        var json = JSONText.parse(fixtures.huggingFace["tokenizer.json"]!)
        var applied = [mutate(&json, &r)]
        if !applied[0].mustRefuse && r.chance(0.25) { applied.append(mutate(&json, &r)) }  // never undo a must-refuse edit
        var bytes = Array(json.text.utf8)
        if r.chance(0.15) { applied.append(Applied(name: TextEdits.mangle(&bytes, &r), mustRefuse: false)) }
        if r.chance(0.05) {
            bytes = r.pick([[], Array("[]".utf8), Array(bytes.prefix(r.below(bytes.count))), Array(JSONText.nested(100_000).text.utf8)])
            applied.append(Applied(name: "not-an-object(\(bytes.count) bytes)", mustRefuse: true))
        }
        // `eval` tokenizes the text; `lancet tokenize` reads the tokenizer alone, so it is not asked to agree with
        // the model's checks (a tokenizer larger than the embedding is the model's problem, not the tokenizer's).
        return fixtures.huggingFaceCase(.tokenizer, index: index, applied: applied, replacing: "tokenizer.json", with: bytes)
    }

    static func mutate(_ t: inout JSONText, _ r: inout FuzzRandom) -> Applied {
        let vocabulary = FuzzFixtures.sizes.vocabulary
        guard var model = t["model"], case let .object(vocab)? = model["vocab"] else { return Applied(name: "no-model", mustRefuse: false) }
        let k = r.below(vocab.count)
        let token = vocab[k].0
        switch r.below(9) {
        case 0:
            let id = r.pick([vocabulary, vocabulary + 1000, Int(Int32.max), -1, 1 << 40])
            var v = vocab
            v[k].1 = .int(id)
            model["vocab"] = .object(v)
            t["model"] = model
            return Applied(name: "vocab-id(\(token)=\(id))", mustRefuse: true)
        case 1:
            var v = vocab
            let other = (k + 1 + r.below(vocab.count - 1)) % vocab.count
            v[k].1 = v[other].1
            model["vocab"] = .object(v)
            t["model"] = model
            return Applied(name: "vocab-id-shared(\(token))", mustRefuse: true)
        case 2:
            guard case var .array(merges)? = model["merges"], !merges.isEmpty else { return Applied(name: "no-merges", mustRefuse: false) }
            let m = r.below(merges.count)
            let bad = r.pick([JSONText.string("zzqq zzqq"), .string("nospace"), .string("a b c"), .array([.string("a")]), .int(3),
                              .array([.string("Ġ"), .string("unknown-token")])])
            merges[m] = bad
            model["merges"] = .array(merges)
            t["model"] = model
            return Applied(name: "merge(\(m)=\(bad.text))", mustRefuse: true)
        case 3:
            let type = r.pick(["WordPiece", "Unigram", "", "bpe"])
            model["type"] = .string(type)
            t["model"] = model
            return Applied(name: "model-type(\(type))", mustRefuse: true)
        case 4:
            guard case var .array(added)? = t["added_tokens"], !added.isEmpty else { return Applied(name: "no-added", mustRefuse: false) }
            let a = r.below(added.count)
            let id = r.pick([vocabulary + 5, -3, 1 << 40])
            added[a]["id"] = .int(id)
            t["added_tokens"] = .array(added)
            return Applied(name: "added-token-id(\(a)=\(id))", mustRefuse: true)
        case 5:
            let key = r.pick(["vocab", "merges"])
            model[key] = r.pick([JSONText.null, .string("x"), .int(1), .array([.null]), JSONText.nested(100_000)])
            t["model"] = model
            return Applied(name: "model-\(key)-hostile", mustRefuse: true)
        case 6:
            var v = vocab
            v.remove(at: k)
            model["vocab"] = .object(v)
            t["model"] = model
            // A gap in the ids: filled with a placeholder token, as llama.cpp's converter does.
            return Applied(name: "vocab-token-removed(\(token))", mustRefuse: false)
        case 7:
            let key = r.pick(["pre_tokenizer", "decoder", "normalizer", "post_processor"])
            t[key] = r.pick([JSONText.null, .object([("type", .string("Nonsense"))]), .string("x"), .int(3)])
            return Applied(name: "\(key)-replaced(\(t[key]!.text.prefix(30)))", mustRefuse: false)
        default:
            t[r.pick(["version", "truncation", "padding", "extra"])] = JSONText.hostile(&r)
            return Applied(name: "optional-hostile", mustRefuse: false)
        }
    }
}
