import Foundation
import XCTest
@testable import LancetIO
import LancetIR
import LancetTensor

/// Builders of bad model files for the loader tests: a tiny seeded model exported to GGUF or a Hugging Face
/// folder, then its metadata, config, header or data changed in one place.
enum LoaderTestSupport {
    /// Sizes whose rows (64, 128) are whole blocks of every 32-element quantisation type.
    static var sizes: TinyLlama.Sizes {
        var s = TinyLlama.Sizes()
        (s.hidden, s.ffn, s.tied) = (64, 128, false)
        return s
    }

    /// A tiny model exported as an F32 GGUF file at a fresh temporary path.
    static func tinyGGUF(seed: UInt64 = 11, _ name: String = "tiny.gguf") throws -> String {
        let path = GGUFTestSupport.temporaryPath(name)
        try GGUFExporter.write(TinyLlama.make(sizes, seed: seed, pairing: .adjacent), to: path)
        return path
    }

    /// Rewrites the GGUF at `path` into a new file with its metadata changed by `edit` (tensors copied unchanged,
    /// or replaced by `replace` where it returns raw bytes and a type; the tensor called `last` moved to the end).
    static func rewrite(_ path: String, metadata edit: (inout [(key: String, value: GGUFValue)]) -> Void,
                        replace: (GGUFTensorInfo) -> (GGMLType, [UInt8])? = { _ in nil }, last: String? = nil) throws -> String {
        let file = try GGUFFile(path: path)
        var entries = file.metadataEntries
        edit(&entries)
        var writer = GGUFWriter(metadata: entries.map { ($0.key, $0.value) }, alignment: file.alignment)
        let ordered = file.tensors.filter { $0.name != last } + file.tensors.filter { $0.name == last }
        for info in ordered {
            if let (type, bytes) = replace(info) {
                try writer.addRaw(name: info.name, dimensions: info.dimensions, type: type, bytes: bytes)
            } else {
                try writer.addRaw(info, of: file)
            }
        }
        let out = GGUFTestSupport.temporaryPath("rewritten.gguf")
        try writer.write(to: out)
        return out
    }

    /// Sets (or adds) one metadata value.
    static func set(_ key: String, _ value: GGUFValue) -> (inout [(key: String, value: GGUFValue)]) -> Void {
        { entries in
            if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].value = value } else { entries.append((key, value)) }
        }
    }

    /// Byte position of tensor `name`'s description in a GGUF file's bytes: (type field, offset field).
    static func tensorInfoFields(_ bytes: [UInt8], _ file: GGUFFile, _ name: String) -> (type: Int, offset: Int) {
        let info = file.info(name)!
        let needle = withUnsafeBytes(of: UInt64(name.utf8.count).littleEndian) { Array($0) } + Array(name.utf8)
        let headerEnd = file.dataOffset
        var at = -1
        for p in 0..<(headerEnd - needle.count) where bytes[p] == needle[0] && Array(bytes[p..<(p + needle.count)]) == needle {
            // The last match: metadata strings may contain the same bytes, tensor infos come after them.
            at = p
        }
        precondition(at >= 0, "tensor info of \(name) not found")
        let type = at + needle.count + 4 + 8 * info.dimensions.count
        return (type, type + 4)
    }

    /// Writes `bytes` to a fresh temporary file.
    static func write(_ bytes: [UInt8], _ name: String = "patched.gguf") throws -> String {
        let path = GGUFTestSupport.temporaryPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Q4_1 blocks for `elements` weights: seeded quants, small positive scales and minima.
    static func q4_1Bytes(elements: Int, seed: UInt64) -> [UInt8] {
        var rng = TestRNG(seed: seed)
        var out: [UInt8] = []
        for _ in 0..<(elements / 32) {
            for half in [Float16(0.01), Float16(-0.05)] { withUnsafeBytes(of: half.bitPattern.littleEndian) { out += $0 } }
            out += (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        return out
    }

    /// Overwrites elements of the F32, F16 or BF16 tensor `name` in the GGUF at `path` with `value` (rounded to the
    /// tensor's type), in a new file.
    static func poisonGGUF(_ path: String, tensor name: String, value: Float, elements: [Int]) throws -> String {
        let file = try GGUFFile(path: path)
        let info = file.info(name)!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for e in elements {
            if let format = info.type.halfFormat {
                let at = file.dataOffset + info.offset + 2 * e
                withUnsafeBytes(of: format.bits(value).littleEndian) { bytes.replaceSubrange(at..<(at + 2), with: $0) }
            } else {
                precondition(info.type == .f32)
                let at = file.dataOffset + info.offset + 4 * e
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
            }
        }
        return try write(bytes, "poisoned.gguf")
    }

    /// A tiny model exported as an F32 Hugging Face folder.
    static func tinyFolder(seed: UInt64 = 12) throws -> String {
        let folder = GGUFTestSupport.temporaryPath("tiny-hf")
        try HuggingFaceExporter.write(TinyLlama.make(sizes, seed: seed), to: folder)
        return folder
    }

    /// Sets `key` of the folder's `config.json` to the JSON text `value` (the key must be present).
    static func editConfig(_ folder: String, _ key: String, _ value: String) throws {
        let path = folder + "/config.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: "\"\(NSRegularExpression.escapedPattern(for: key))\" : [^,\n]*")
        let range = NSRange(text.startIndex..., in: text)
        precondition(pattern.numberOfMatches(in: text, range: range) == 1, "config.json has no '\(key)': \(text)")
        let edited = pattern.stringByReplacingMatches(in: text, range: range, withTemplate: NSRegularExpression.escapedTemplate(for: "\"\(key)\" : \(value)"))
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Overwrites every element of the F32 tensor `name` in the folder's `model.safetensors` with `value`.
    static func poisonSafetensors(_ folder: String, tensor name: String, value: Float) throws {
        let path = folder + "/" + SafetensorsCheckpoint.singleFileName
        let file = try SafetensorsFile(path: path)
        let info = file.info(name)!
        precondition(info.dtype == .f32)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for e in 0..<info.elementCount {
            let at = file.dataOffset + info.dataOffsets.lowerBound + 4 * e
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

/// Asserts that `body` throws an error whose description contains every phrase.
func assertLoadError<T>(_ body: @autoclosure () throws -> T, _ phrases: String..., file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        let text = "\(error)"
        XCTAssertTrue(error is ModelImportError || error is GGUFError || error is HuggingFaceConfigError || error is SafetensorsError || error is TokenizerError,
                      "not a loader error: \(type(of: error)) \(text)", file: file, line: line)
        for phrase in phrases { XCTAssertTrue(text.contains(phrase), "expected '\(phrase)' in: \(text)", file: file, line: line) }
    }
}

extension XCTestCase {
    /// `path`, removed when the test ends (a file or folder the test writes there).
    func temporary(_ path: String) -> String {
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
