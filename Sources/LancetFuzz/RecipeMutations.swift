/// Mutations of a recipe, validated by `lancet validate` against the tiny GGUF model. Invalid by construction:
/// YAML anchors, aliases and merge keys (and a billion-laughs bomb), unknown keys and passes, options out of
/// range or not finite, counts beyond what the model and data hold, control characters in names, files that
/// do not exist, an output folder that does not exist, broken YAML.
enum RecipeMutations {
    /// Line edits: each replaces a line of the base recipe (matched by its prefix) or adds lines.
    static func make(_ fixtures: FuzzFixtures, index: Int, random r: inout FuzzRandom) -> FuzzCase {
        var lines = FuzzFixtures.baseRecipe.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var applied = [mutate(&lines, &r)]
        if !applied[0].mustRefuse && r.chance(0.25) { applied.append(mutate(&lines, &r)) }  // never undo a must-refuse edit
        var bytes = Array(lines.joined(separator: "\n").utf8)
        if r.chance(0.1) { applied.append(Applied(name: TextEdits.mangle(&bytes, &r), mustRefuse: false)) }
        return FuzzCase(kind: .recipe, index: index, mutations: applied.map(\.name),
                        expectation: FuzzExpectation(applied),
                        files: ["recipe.yaml": bytes, "model.gguf": fixtures.ggufF32, "text.txt": fixtures.text, "eval.txt": fixtures.text, "out/.keep": []],
                        commands: [["validate", "recipe.yaml"]])
    }

    /// Replaces the first line starting with `prefix` (after indentation) by `line`, keeping the indentation.
    static func replace(_ lines: inout [String], _ prefix: String, with line: String) {
        guard let i = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }) else { return }
        let indent = lines[i].prefix { $0 == " " }
        lines[i] = indent + line
    }

    static func mutate(_ l: inout [String], _ r: inout FuzzRandom) -> Applied {
        switch r.below(16) {
        case 0:
            l.insert("x: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]", at: 1)
            for k in 0..<8 {
                let previous = k == 0 ? "a" : "l\(k - 1)"
                l.insert("l\(k): &l\(k) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]", at: 2 + k)
            }
            return Applied(name: "billion-laughs", mustRefuse: true)
        case 1:
            replace(&l, "model:", with: "model: &m model.gguf")
            l.append("note: *m")
            return Applied(name: "alias", mustRefuse: true)
        case 2:
            replace(&l, "calibration:", with: "calibration: &c {data: text.txt, samples: 2, context: 64, seed: 0}")
            l.append("evaluate2: {<<: *c}")
            return Applied(name: "merge-key", mustRefuse: true)
        case 3:
            let value = r.pick(["1.5", "-0.1", "1e400", ".nan", ".inf", "-.inf", "half", "[0.5]", "{}", "null", "0x10", "1", "0.999999"])
            replace(&l, "- wanda:", with: "- wanda: {sparsity: \(value)}")
            return Applied(name: "sparsity(\(value))", mustRefuse: value != "0.999999")
        case 4:
            let value = r.pick(["10000000", "0", "-1", "1e9", "99999999999999999999", "2.5", "1"])
            replace(&l, "calibration:", with: "calibration: {data: text.txt, samples: \(value), context: 64, seed: 0}")
            return Applied(name: "samples(\(value))", mustRefuse: value != "1")
        case 5:
            let value = r.pick(["0", "-64", "1000000000", "4096", "32"])
            replace(&l, "calibration:", with: "calibration: {data: text.txt, samples: 2, context: \(value), seed: 0}")
            return Applied(name: "context(\(value))", mustRefuse: value != "32")
        case 6:
            let name = r.pick(["pr\u{0}une", "pr\u{1}une", "a\u{7F}b", "\"pr\\0une\"", "\"tab\\there\""])
            replace(&l, "- name:", with: "- name: \(name)")
            return Applied(name: "stage-name(control character)", mustRefuse: true)
        case 7:
            let key = r.pick(["modle: x", "stages2: []", "lancet_version: 1"])
            l.append(key)
            return Applied(name: "unknown-key(\(key))", mustRefuse: true)
        case 8:
            replace(&l, "- wanda:", with: r.pick(["- wandaa: {sparsity: 0.5}", "- wanda: {sparsity: 0.5, sparcity: 0.5}", "- \"\": {}"]))
            return Applied(name: "unknown-pass-or-option", mustRefuse: true)
        case 9:
            let file = r.pick(["missing.txt", "/nonexistent/x.txt", "text.txt/x", ""])
            replace(&l, "calibration:", with: "calibration: {data: \"\(file)\", samples: 2, context: 64, seed: 0}")
            return Applied(name: "calibration-file(\(file))", mustRefuse: true)
        case 10:
            let model = r.pick(["missing.gguf", "text.txt", "/proc/self/mem", "out"])
            replace(&l, "model:", with: "model: \(model)")
            return Applied(name: "model(\(model))", mustRefuse: true)
        case 11:
            let output = r.pick(["/proc/x/o.gguf", "nofolder/o.gguf", "text.txt/o.gguf", "out/o.gguf"])
            replace(&l, "output:", with: "output: \(output)")
            // A missing output folder is created by the run (validate checks that it can be), so it is valid.
            return Applied(name: "output(\(output))", mustRefuse: output.hasPrefix("/proc") || output.hasPrefix("text.txt"))
        case 12:
            let broken = r.pick(["stages: [", "  - name: {", "\tlancet: 1", "lancet: 1\nlancet: 1", "model: \"unterminated", ": x"])
            l.insert(broken, at: r.below(l.count))
            return Applied(name: "yaml-broken(\(broken.prefix(12)))", mustRefuse: true)
        case 13:
            let version = r.pick(["2", "0", "\"1\"", "1.0", "-1"])
            replace(&l, "lancet:", with: "lancet: \(version)")
            return Applied(name: "format-version(\(version))", mustRefuse: true)
        case 14:
            let target = r.pick(["[\"blocks.99.mlp.*\"]", "[\"nothing\"]", "[]", "\"blocks.*\"", "[\"blocks.*.mlp.*\"]"])
            replace(&l, "targets:", with: "targets: \(target)")
            return Applied(name: "targets(\(target))", mustRefuse: target.contains("99") || target.contains("nothing"))
        default:
            let depth = r.pick([1000, 100_000])
            l.append("deep: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
            return Applied(name: "deep-nesting(\(depth))", mustRefuse: true)
        }
    }
}
