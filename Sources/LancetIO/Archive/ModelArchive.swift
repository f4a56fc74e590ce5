import Foundation
import LancetIR
import LancetTensor

/// Lancet's lossless file of a model in IR form: the exact graph of every block (ops, attributes, values),
/// every parameter as F32, every mask, the configuration and the provenance — what a GGUF for llama.cpp
/// cannot carry (masks, low-rank factors, heterogeneous graphs, plugin ops such as the dynamic FFN with its predictor).
/// Used for pipeline checkpoints and for models only Lancet's runtime runs.
///
/// Two containers hold the same content. A `.lancet` path is a GGUF file: metadata `lancet.archive.version` and
/// `lancet.archive.ir` (JSON of the config and graphs), tensors `embedding`, `final_norm`, `output_head`,
/// `blocks.N.<parameter>` (F32) and `blocks.N.<parameter>.mask` (I8, 1 = kept), and the tokenizer as GGUF's
/// `tokenizer.ggml.*` metadata when the model has one (so `lancet eval`, `generate` and `bench` run an archive as they
/// run a GGUF file). A `.safetensors` path is one safetensors file with the same tensor names (masks as U8) and the
/// same metadata as `__metadata__` strings: `format` is `lancet-archive`, `lancet.provenance` a JSON array, and the
/// tokenizer's GGUF metadata one JSON text under `lancet.tokenizer` (`GGUFValue.jsonText(of:)`), so any safetensors
/// reader gets every tensor and the graph. Written by `Model.save(to:)`; `ModelLoader` reads both.
public enum ModelArchive {
    /// The archive format version written and accepted.
    public static let version = 1
    /// The `general.architecture` of an archive.
    public static let architecture = "lancet-archive"
    /// The `format` of an archive's safetensors `__metadata__`.
    public static let safetensorsFormat = "lancet-archive"
    /// The safetensors metadata key of the tokenizer (its GGUF metadata as JSON).
    public static let tokenizerKey = "lancet.tokenizer"

    /// Whether an opened GGUF file is a model archive.
    public static func isArchive(_ file: GGUFFile) -> Bool { file.string("general.architecture") == architecture }

    /// Whether an opened safetensors file is a model archive.
    public static func isArchive(_ file: SafetensorsFile) -> Bool { file.metadata["format"] == safetensorsFormat }

    /// Whether `path` names the safetensors container (a `.safetensors` extension, any case).
    public static func isSafetensorsPath(_ path: String) -> Bool { path.lowercased().hasSuffix(".safetensors") }

    /// Writes `model` to `path` atomically — a safetensors file for a `.safetensors` path, else a GGUF file — with
    /// `extra` metadata appended (safetensors: strings as they are, other values as tagged JSON); with
    /// `overwrite: false` an existing file is an error (checkpoints overwrite).
    public static func write(_ model: Model, to path: String, extra: [(String, GGUFValue)] = [], overwrite: Bool = true) throws {
        try AtomicFile.checkWritable(path, overwrite: overwrite)
        let aliases = aliasTable(of: model)
        let aliasText = try aliases.isEmpty ? nil : jsonText(aliases)
        if isSafetensorsPath(path) {
            try writeSafetensors(model, to: path, aliasText: aliasText, aliases: aliases, extra: extra, overwrite: overwrite)
            return
        }
        var writer = GGUFWriter(metadata: [
            ("general.architecture", .string(architecture)),
            ("lancet.archive.version", .uint32(UInt32(version))),
            ("lancet.archive.ir", .string(try irJSON(model))),
            ("lancet.provenance", .array(.string, model.provenance.map { .string($0) })),
        ] + GGUFExporter.tokenizerMetadata(of: model) + extra)
        if let aliasText { writer.metadata.append(("lancet.archive.aliases", .string(aliasText))) }
        try forEachTensor(of: model, skipping: aliases) { try add($0, $1, mask: $2, to: &writer) }
        try writer.write(to: path, overwrite: overwrite)
    }

    /// A tensor of a GGUF archive and its mask, flat I8 (1 = kept).
    static func add(_ name: String, _ tensor: Tensor, mask: Mask?, to writer: inout GGUFWriter) throws {
        try writer.add(name: name, tensor: tensor)
        if let mask { try writer.addRaw(name: name + ".mask", dimensions: [mask.keep.count], type: .i8, bytes: mask.keep) }
    }

    static func writeSafetensors(_ model: Model, to path: String, aliasText: String?, aliases: [String: String],
                                 extra: [(String, GGUFValue)], overwrite: Bool) throws {
        var metadata = [
            "format": safetensorsFormat, "lancet.archive.version": String(version), "lancet.archive.ir": try irJSON(model),
            "lancet.provenance": try jsonText(model.provenance),
        ]
        let tokenizer = GGUFExporter.tokenizerMetadata(of: model)
        if !tokenizer.isEmpty { metadata[tokenizerKey] = try GGUFValue.jsonText(of: tokenizer) }
        if let aliasText { metadata["lancet.archive.aliases"] = aliasText }
        for (key, value) in extra { metadata[key] = try value.stringValue ?? jsonText(value.taggedJSON) }
        var writer = SafetensorsWriter(metadata: metadata)
        forEachTensor(of: model, skipping: aliases) { name, tensor, mask in
            writer.add(name, tensor)
            if let mask { writer.add(name + ".mask", Tensor(shape: tensor.shape, mask.keep.map(Float.init)), as: .u8) }
        }
        try writer.write(to: path, overwrite: overwrite)
    }

    /// A parameter several blocks share is written once, under its first path; the others are aliases of it.
    static func aliasTable(of model: Model) -> [String: String] {
        var aliases: [String: String] = [:]
        for group in model.sharedParameterGroups { for other in group.dropFirst() { aliases[other] = group[0] } }
        return aliases
    }

    /// Every tensor an archive stores, by its name, with the mask of a block parameter; aliases left out.
    static func forEachTensor(of model: Model, skipping aliases: [String: String],
                              _ body: (String, Tensor, Mask?) throws -> Void) rethrows {
        try body("embedding", model.embedding, nil)
        try body("final_norm", model.finalNorm, nil)
        if let head = model.outputHead { try body("output_head", head, nil) }
        for (i, block) in model.blocks.enumerated() {
            try forEachParameter(of: block, prefix: "blocks.\(i).", skipping: aliases, body)
        }
    }

    static func forEachParameter(of block: Block, prefix: String, skipping aliases: [String: String] = [:],
                                 _ body: (String, Tensor, Mask?) throws -> Void) rethrows {
        for name in block.parameters.keys.sorted() where aliases[prefix + name] == nil {
            try body(prefix + name, block.parameters[name]!, block.masks[name])
        }
    }

    static func jsonText(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    /// Reads a GGUF archive written by `write`. Every stored tensor goes through `weights` (the loaders' check for NaN
    /// and ±infinity) when one is given.
    public static func read(_ path: String, weights: NonFiniteWeightCheck? = nil) throws -> (model: Model, file: GGUFFile) {
        let file = try GGUFFile(path: path)
        return (try decode(file, weights: weights), file)
    }

    /// Reads a safetensors archive written by `write` (a `.safetensors` path), with the same checks as `read`.
    public static func readSafetensors(_ path: String, weights: NonFiniteWeightCheck? = nil) throws -> Model {
        try decode(try openSafetensors(path), weights: weights)
    }

    /// Opens the safetensors file at `path`, refusing one that is not an archive (a single safetensors file is never a
    /// model by itself: a Hugging Face model is a folder).
    public static func openSafetensors(_ path: String) throws -> SafetensorsFile {
        let file = try SafetensorsFile(path: path)
        guard isArchive(file) else {
            let format = file.metadata["format"].map { "'\($0)'" } ?? "none"
            throw ModelImportError(path, "a single safetensors file loads only as a Lancet archive (metadata 'format' is '\(safetensorsFormat)', here \(format)); for a Hugging Face model, give its folder (config.json beside the safetensors)")
        }
        return file
    }

    static func decode(_ file: some ArchiveContainer, weights: NonFiniteWeightCheck?) throws -> Model {
        let path = file.path
        func fail(_ reason: String) -> ModelImportError { ModelImportError(path, reason) }
        guard file.text("lancet.archive.version") == String(version), let json = file.text("lancet.archive.ir") else {
            throw fail("not a Lancet archive of version \(version)")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
              let c = root["config"] as? [String: Any], let blocksJSON = root["blocks"] as? [[String: Any]] else {
            throw fail("metadata 'lancet.archive.ir' is not a valid IR description")
        }
        let config = try decodeConfig(c, fail: fail)
        var aliases: [String: String] = [:]
        if let text = file.text("lancet.archive.aliases") {
            guard let table = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else {
                throw fail("metadata 'lancet.archive.aliases' is not a JSON object of parameter paths")
            }
            aliases = table
        }
        var blocks: [Block] = []
        var loaded: [String: Tensor] = [:]       // path → tensor, so that aliases share the memory of their target
        for (i, b) in blocksJSON.enumerated() {
            let block = try decodeBlock(b, prefix: "blocks.\(i).", file: file, what: "block \(i)", fail: fail) { path in
                if let target = aliases[path] {
                    guard let t = loaded[target] else { throw fail("parameter '\(path)' is an alias of '\(target)', which no earlier block holds") }
                    return t
                }
                return nil
            }
            for (name, t) in block.parameters { loaded["blocks.\(i).\(name)"] = t }
            blocks.append(block)
        }
        let head = file.hasTensor("output_head") ? try file.tensor("output_head") : nil
        var model = Model(config: config, embedding: try file.tensor("embedding"), blocks: blocks, finalNorm: try file.tensor("final_norm"),
                          outputHead: head, provenance: try file.provenance())
        var expected = Set<String>()
        forEachTensor(of: model, skipping: aliases) { name, _, mask in
            expected.insert(name)
            if mask != nil { expected.insert(name + ".mask") }
        }
        if let stray = file.storedTensorNames.first(where: { !expected.contains($0) }) {
            throw fail("tensor '\(stray)' is not a parameter (or mask) of the archived graph")
        }
        if let weights {
            try forEachTensor(of: model, skipping: aliases) { name, t, _ in try weights.check(t, name: name, file: path, importPath: path) }
        }
        do { model.tokenizer = try file.tokenizer() } catch { throw fail("its tokenizer metadata: \(error)") }
        do { try Verifier.verify(model) } catch let e as VerifierError { throw fail("the archived model does not verify: \(e)") }
        return model
    }

    static func irJSON(_ model: Model) throws -> String {
        let c = model.config
        let rope = RopeOp(heads: 1, headDimensions: c.rope.rotaryDimensions, config: c.rope).attributes
        let config: [String: Any] = [
            "architecture": c.architecture, "name": c.name, "hidden": c.hiddenSize, "vocabulary": c.vocabularySize,
            "context": c.contextLength, "eps": String(c.normEpsilon), "rope": encodeAttributes(rope),
        ]
        let blocks = model.blocks.map(blockJSON)
        let data = try JSONSerialization.data(withJSONObject: ["config": config, "blocks": blocks], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func blockJSON(_ b: Block) -> [String: Any] {
        [
            "input": b.input, "output": b.output, "parameters": b.parameters.keys.sorted(),
            "nodes": b.nodes.map { n in
                ["name": n.name, "kind": n.kind, "inputs": n.inputs, "outputs": n.outputs, "attributes": encodeAttributes(n.op.attributes)] as [String: Any]
            },
        ]
    }

    static func decodeBlock(_ b: [String: Any], prefix: String, file: some ArchiveContainer, what: String, fail: (String) -> ModelImportError,
                            alias: (String) throws -> Tensor? = { _ in nil }) throws -> Block {
        guard let input = b["input"] as? String, let output = b["output"] as? String, let nodesJSON = b["nodes"] as? [[String: Any]],
              let paramNames = b["parameters"] as? [String] else { throw fail("\(what) of the IR is malformed") }
        var nodes: [Node] = []
        for n in nodesJSON {
            guard let name = n["name"] as? String, let kind = n["kind"] as? String, let ins = n["inputs"] as? [String],
                  let outs = n["outputs"] as? [String], let attrs = n["attributes"] as? [String: Any] else {
                throw fail("\(what): a node of the IR is malformed")
            }
            let op: any Op
            do { op = try OpRegistry.make(kind: kind, attributes: try decodeAttributes(attrs)) } catch let e as OpShapeError {
                throw fail("\(what), node '\(name)': \(e.reason)")
            }
            nodes.append(Node(name, op, inputs: ins, outputs: outs))
        }
        var params: [String: Tensor] = [:], masks: [String: Mask] = [:]
        for p in paramNames {
            if let shared = try alias(prefix + p) {
                params[p] = shared
                continue
            }
            let t = try file.tensor(prefix + p)
            params[p] = t
            if let keep = try file.maskBytes(of: prefix + p, shape: t.shape) {
                guard keep.allSatisfy({ $0 <= 1 }) else { throw fail("tensor '\(prefix + p).mask' holds values other than 0 and 1") }
                masks[p] = Mask(shape: t.shape, keep: keep)
            }
        }
        return Block(input: input, output: output, nodes: nodes, parameters: params, masks: masks)
    }

    /// Writes one block (graph, parameters, masks) to `path` atomically, for per-block checkpoints, with
    /// `extra` metadata appended.
    public static func writeBlock(_ block: Block, to path: String, extra: [(String, GGUFValue)] = []) throws {
        let data = try JSONSerialization.data(withJSONObject: blockJSON(block), options: [.sortedKeys])
        var writer = GGUFWriter(metadata: [
            ("general.architecture", .string("lancet-block")),
            ("lancet.archive.version", .uint32(UInt32(version))),
            ("lancet.archive.block", .string(String(decoding: data, as: UTF8.self))),
        ] + extra)
        try forEachParameter(of: block, prefix: "") { try add($0, $1, mask: $2, to: &writer) }
        try writer.write(to: path, overwrite: true)
    }

    /// Reads a block written by `writeBlock`.
    public static func readBlock(_ path: String) throws -> Block { try readBlock(GGUFFile(path: path)) }

    /// Reads a block written by `writeBlock` from an opened file (whose metadata the caller may check first).
    public static func readBlock(_ file: GGUFFile) throws -> Block {
        let path = file.path
        func fail(_ reason: String) -> ModelImportError { ModelImportError(path, reason) }
        guard file.int("lancet.archive.version") == version, let json = file.string("lancet.archive.block"),
              let b = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw fail("not a Lancet block archive of version \(version)")
        }
        return try decodeBlock(b, prefix: "", file: file, what: "the block", fail: fail)
    }

    static func decodeConfig(_ c: [String: Any], fail: (String) -> ModelImportError) throws -> ModelConfig {
        guard let arch = c["architecture"] as? String, let name = c["name"] as? String, let hidden = c["hidden"] as? Int,
              let vocab = c["vocabulary"] as? Int, let context = c["context"] as? Int, let epsText = c["eps"] as? String,
              let eps = Double(epsText), let ropeJSON = c["rope"] as? [String: Any] else { throw fail("the IR's config is malformed") }
        for (field, value) in [("hidden", hidden), ("vocabulary", vocab), ("context", context)] where value <= 0 {
            throw fail("the IR's config: '\(field)' must be positive, got \(value)")
        }
        guard eps > 0, eps.isFinite else { throw fail("the IR's config: 'eps' must be positive and finite, got \(epsText)") }
        let rope: RopeOp
        do { rope = try RopeOp(attributes: try decodeAttributes(ropeJSON)) } catch let e as OpShapeError { throw fail("rope config: \(e.reason)") }
        return ModelConfig(architecture: arch, name: name, hiddenSize: hidden, vocabularySize: vocab, contextLength: context,
                           normEpsilon: eps, rope: rope.config)
    }

    /// Attributes as tagged JSON; doubles as their shortest exact text.
    static func encodeAttributes(_ a: [String: OpAttribute]) -> [String: Any] {
        a.mapValues { v -> Any in
            switch v {
            case let .int(i): ["int": i]
            case let .double(d): ["double": String(d)]
            case let .bool(b): ["bool": b]
            case let .string(s): ["string": s]
            case let .ints(l): ["ints": l]
            case let .doubles(l): ["doubles": l.map { String($0) }]
            }
        }
    }

    static func decodeAttributes(_ json: [String: Any]) throws -> [String: OpAttribute] {
        try json.mapValues { raw -> OpAttribute in
            guard let tagged = raw as? [String: Any], let (tag, v) = tagged.first else { throw OpShapeError("malformed attribute") }
            switch tag {
            case "int": if let i = v as? Int { return .int(i) }
            case "double": if let s = v as? String, let d = Double(s) { return .double(d) }
            case "bool": if let b = v as? Bool { return .bool(b) }
            case "string": if let s = v as? String { return .string(s) }
            case "ints": if let l = v as? [Int] { return .ints(l) }
            case "doubles": if let l = v as? [String] { return .doubles(l.compactMap(Double.init)) }
            default: break
            }
            throw OpShapeError("malformed attribute of type '\(tag)'")
        }
    }
}
