/// The hostile inputs found by hand in issue 23, as fixed cases that every campaign runs first: each must be
/// refused with a clean error.
public enum FuzzRegressions {
    /// Every regression case, numbered from 1_000_000 so they never collide with generated ones.
    public static func cases(_ f: FuzzFixtures) -> [FuzzCase] {
        var out: [FuzzCase] = []
        func gguf(_ name: String, quantised: Bool = false, _ edit: (inout GGUFImage) -> Void) {
            var image = GGUFImage(parsing: quantised ? f.ggufQ8 : f.ggufF32)
            edit(&image)
            out.append(FuzzCase(kind: .gguf, index: 1_000_000 + out.count, mutations: ["regression:" + name], expectation: .mustRefuse,
                                files: ["model.gguf": image.serialized(), "text.txt": f.text], commands: FuzzFixtures.loadCommands("model.gguf")))
        }
        func key(_ g: GGUFImage, _ suffix: String) -> String { g.entries.first { $0.key.hasSuffix(suffix) }!.key }
        gguf("two tensors share one data offset") { $0.tensors[3].offset = $0.tensors[2].offset }
        gguf("a Q8_0 tensor relabelled Q4_0", quantised: true) { g in
            let i = g.tensors.firstIndex { $0.type == 8 }!
            g.tensors[i].type = 2
        }
        gguf("block_count = 10^12") { g in g.set(key(g, ".block_count"), type: GGUFTag.u64, payload: ByteSink.u64(1_000_000_000_000)) }
        for (name, value) in [("RMS epsilon NaN", Float.nan), ("RMS epsilon -1", -1)] {
            gguf(name) { g in g.set(key(g, ".attention.layer_norm_rms_epsilon"), type: GGUFTag.f32, payload: ByteSink.f32(value)) }
        }
        for (name, value) in [("RoPE base 0", Float(0)), ("RoPE base NaN", .nan)] {
            gguf(name) { g in g.set("llama.rope.freq_base", type: GGUFTag.f32, payload: ByteSink.f32(value)) }
        }
        gguf("context length 0") { g in g.set(key(g, ".context_length"), type: GGUFTag.u32, payload: ByteSink.u32(0)) }
        gguf("token type 999") { g in
            let i = g.entryIndex("tokenizer.ggml.token_type")!
            let v = ByteSink.u32(999)
            for k in 0..<4 { g.entries[i].payload[12 + 4 * 100 + k] = v[k] }
        }
        gguf("NaN in one weight") { g in
            let t = g.tensors.first { $0.name == "blk.0.attn_q.weight" }!
            let v = ByteSink.f32(.nan)
            for k in 0..<4 { g.data[Int(t.offset) + 40 + k] = v[k] }
        }

        func huggingFace(_ kind: FuzzKind, _ name: String, _ edit: (inout [String: [UInt8]]) -> Void) {
            var files = f.huggingFace
            edit(&files)
            var all = files.mapKeys { "model/" + $0 }
            all["text.txt"] = f.text
            out.append(FuzzCase(kind: kind, index: 1_000_000 + out.count, mutations: ["regression:" + name], expectation: .mustRefuse,
                                files: all, commands: FuzzFixtures.loadCommands("model")))
        }
        huggingFace(.safetensors, "q_proj all NaN") { files in
            var s = SafetensorsMutations.Image(files["model.safetensors"]!)
            let (a, b) = s.offsets("model.layers.0.self_attn.q_proj.weight")!
            let v = ByteSink.f32(.nan)
            for at in stride(from: a, to: b, by: 4) { for k in 0..<4 { s.data[at + k] = v[k] } }
            files["model.safetensors"] = s.serialized()
        }
        huggingFace(.safetensors, "duplicated key in the header") { files in
            var s = SafetensorsMutations.Image(files["model.safetensors"]!)
            let name = "model.norm.weight"
            s.extraHeaderText = "," + JSONText.string(name).text + ":" + s.header[name]!.text
            files["model.safetensors"] = s.serialized()
        }
        huggingFace(.config, "num_hidden_layers = 10^12") { files in
            var c = JSONText.parse(files["config.json"]!)
            c["num_hidden_layers"] = .int(1_000_000_000_000)
            files["config.json"] = Array(c.text.utf8)
        }

        func recipe(_ name: String, _ text: String) {
            out.append(FuzzCase(kind: .recipe, index: 1_000_000 + out.count, mutations: ["regression:" + name], expectation: .mustRefuse,
                                files: ["recipe.yaml": Array(text.utf8), "model.gguf": f.ggufF32, "text.txt": f.text, "eval.txt": f.text, "out/.keep": []],
                                commands: [["validate", "recipe.yaml"]]))
        }
        let base = FuzzFixtures.baseRecipe
        let laughs = (0..<9).map { k in "l\(k): &l\(k) [" + Array(repeating: k == 0 ? "\"lol\"" : "*l\(k - 1)", count: 9).joined(separator: ",") + "]" }
        recipe("billion laughs", base + laughs.joined(separator: "\n") + "\n")
        recipe("simple alias", base.replacingOccurrences(of: "model: model.gguf", with: "model: &m model.gguf") + "name: *m\n")
        recipe("samples: 10000000", base.replacingOccurrences(of: "samples: 2", with: "samples: 10000000"))
        recipe("sparsity: 1e400", base.replacingOccurrences(of: "sparsity: 0.5", with: "sparsity: 1e400"))
        recipe("NUL in a stage name", base.replacingOccurrences(of: "name: prune", with: "name: \"pr\\0une\""))
        recipe("unwritable output", base.replacingOccurrences(of: "output: out/pruned.gguf", with: "output: /proc/x/o.gguf"))
        return out
    }
}
