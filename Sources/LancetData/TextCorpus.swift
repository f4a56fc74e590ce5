import Foundation
import LancetIO
import LancetTensor

/// The documents of a text file: a plain UTF-8 text file is one document, read as is; a JSON-lines
/// file (one object per line with a string `text` field, as C4 ships) is one document per line.
/// Either may be gzipped. JSON lines are recognised by the file name (`.jsonl`, `.json`, with or
/// without `.gz`) or by a first non-blank character `{`.
public struct TextCorpus: Sendable {
    /// The file read.
    public let path: String
    /// The documents in file order.
    public let documents: [String]
    /// SHA-256 of the file's bytes as stored (for provenance).
    public let sha256: String

    /// Reads and decodes `path`.
    public init(path: String) throws {
        self.path = path
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let FileMappingError.cannotMap(_, reason) {
            throw DataError.unreadable(path: path, reason: reason)
        }
        sha256 = SHA256.hex(file.bytes)
        let bytes: [UInt8] = Gzip.isCompressed(file.bytes) ? try Gzip.decompress(file.bytes, path: path) : Array(file.bytes)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DataError.corrupt(path: path, reason: "the text is not valid UTF-8")
        }
        guard !text.allSatisfy(\.isWhitespace) else { throw DataError.tooLittleText(path: path, reason: "the file holds no text") }
        let lower = path.lowercased()
        let looksJSON = [".jsonl", ".json", ".jsonl.gz", ".json.gz"].contains { lower.hasSuffix($0) }
            || text.first(where: { !$0.isWhitespace }) == "{"
        documents = looksJSON ? try Self.jsonLines(text, path: path) : [text]
    }

    /// Documents joined by `separator` (a blank line by default, as calibration samplers join C4).
    public func joined(separator: String = "\n\n") -> String { documents.joined(separator: separator) }

    private static func jsonLines(_ text: String, path: String) throws -> [String] {
        var docs: [String] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line.utf8)) } catch {
                throw DataError.badLine(path: path, line: lineNumber, reason: "not valid JSON")
            }
            guard let dict = object as? [String: Any] else { throw DataError.badLine(path: path, line: lineNumber, reason: "not a JSON object") }
            guard let t = dict["text"] as? String else { throw DataError.badLine(path: path, line: lineNumber, reason: "no string field 'text'") }
            docs.append(t)
        }
        guard !docs.isEmpty else { throw DataError.tooLittleText(path: path, reason: "no JSON lines with text") }
        return docs
    }
}
