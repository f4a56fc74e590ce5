/// Mutations of a Hugging Face folder's `config.json`. Invalid by construction: a required size missing or
/// of the wrong type, sizes that do not fit the tensors (zero, negative, huge, not dividing), ε, RoPE base or
/// context length not positive and finite, a tied head declared untied (no `lm_head` in the weights), a file
/// that is not a JSON object.
enum ConfigMutations {
    /// Keys whose value the tensors fix: any other value is invalid.
    static let sizeKeys = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"]

    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        var config = JSONText.parse(fixtures.huggingFace["config.json"]!)
        var applied = [mutate(&config, &r)]
        if !applied[0].mustRefuse && r.chance(0.25) { applied.append(mutate(&config, &r)) }  // never undo a must-refuse edit
        var bytes = Array(config.text.utf8)
        if r.chance(0.15) { applied.append(Applied(name: TextEdits.mangle(&bytes, &r), mustRefuse: false)) }
        if r.chance(0.05) {
            bytes = r.pick([[], Array("[]".utf8), Array("null".utf8), Array(bytes.prefix(r.below(bytes.count)))])
            applied.append(Applied(name: "not-an-object(\(bytes.count) bytes)", mustRefuse: true))
        }
        return fixtures.huggingFaceCase(.config, index: index, applied: applied, replacing: "config.json", with: bytes)
    }

    static func mutate(_ c: inout JSONText, _ r: inout FuzzRandom) -> Applied {
        switch r.below(8) {
        case 0:
            let key = r.pick(sizeKeys)
            c[key] = nil
            // A missing num_key_value_heads means one KV head per query head, which the k/v tensors do not fit.
            return Applied(name: "removed(\(key))", mustRefuse: true)
        case 1, 2:
            let key = r.pick(sizeKeys)
            guard case let .int(old)? = c[key] else { return Applied(name: "no-int(\(key))", mustRefuse: false) }
            let value = r.pick([JSONText.int(old * 2), .int(old + 1), .int(3), .int(0), .int(-old), .int(1_000_000_000_000),
                                .number(Double(old) + 0.5), .string("\(old)"), .null, .bool(true), .array([.int(old)]), JSONText.hostile(&r)])
            c[key] = value
            return Applied(name: "size(\(key)=\(value.text.prefix(24)))", mustRefuse: value.text != "\(old)")
        case 3:
            let key = r.pick(["rms_norm_eps", "rope_theta"])
            let value = r.pick([JSONText.int(0), .number(-1), .raw("1e400"), .raw("-1e400"), .raw("NaN"), .string("1e-5"), .null,
                                .number(1e-3), .number(500_000)])
            c[key] = value
            let positive = value.text == "0.001" || value.text == "500000.0"
            return Applied(name: "float(\(key)=\(value.text))", mustRefuse: !positive && value.text != "null")
        case 4:
            let value = r.pick([JSONText.int(0), .int(-1), .string("x"), .int(16), .int(1 << 20)])
            c["max_position_embeddings"] = value
            return Applied(name: "context(\(value.text))", mustRefuse: value.text != "16" && value.text != "\(1 << 20)")
        case 5:
            c["tie_word_embeddings"] = .bool(false)
            return Applied(name: "untied-without-lm_head", mustRefuse: true)
        case 6:
            let value = r.pick([JSONText.string("gpt2"), .string(""), .int(7), .null])
            c["model_type"] = value
            return Applied(name: "model_type(\(value.text))", mustRefuse: true)
        default:
            let key = r.pick(["extra_key", "architectures", "torch_dtype", "bos_token_id", "eos_token_id", "rope_scaling", "head_dim"])
            let value = JSONText.hostile(&r)
            c[key] = value
            // Unknown keys are ignored as transformers does; known optional ones with a wrong value may be refused.
            return Applied(name: "optional(\(key)=\(value.text.prefix(24)))", mustRefuse: false)
        }
    }
}
