import Foundation

/// An error reading or writing a Hugging Face `config.json`. The message names the file, the field as a
/// JSON path (`rope_scaling.factor`, `eos_token_id[1]`; empty for the whole file) and the problem.
public struct HuggingFaceConfigError: Error, CustomStringConvertible, Equatable {
    /// The file concerned.
    public let path: String
    /// The JSON path of the offending field, or `""` when the problem is the whole file.
    public let field: String
    /// What is wrong.
    public let reason: String

    /// An error about `field` of `path`.
    public init(_ path: String, field: String, _ reason: String) {
        self.path = path
        self.field = field
        self.reason = reason
    }

    public var description: String { field.isEmpty ? "\(path): \(reason)" : "\(path): \(field): \(reason)" }

    /// Translates a `DecodingError` raised while decoding the file at `path`.
    init(_ error: DecodingError, path: String) {
        switch error {
        case let .keyNotFound(key, context):
            self.init(path, field: Self.jsonPath(context.codingPath + [key]), "missing required field")
        case let .typeMismatch(type, context):
            if context.codingPath.isEmpty {
                self.init(path, field: "", "the file must hold a JSON object")
            } else {
                let custom = context.debugDescription.hasPrefix("expected ")
                self.init(path, field: Self.jsonPath(context.codingPath), custom ? context.debugDescription : "expected \(Self.describe(type))")
            }
        case let .valueNotFound(type, context):
            self.init(path, field: Self.jsonPath(context.codingPath), "is null; expected \(Self.describe(type))")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                let detail = context.underlyingError.map { ": \($0)" } ?? ""
                self.init(path, field: "", "not valid JSON\(detail)")
            } else {
                self.init(path, field: Self.jsonPath(context.codingPath), context.debugDescription)
            }
        @unknown default:
            self.init(path, field: "", "\(error)")
        }
    }

    /// `a.b[2].c` from a coding path.
    static func jsonPath(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
        return out
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is [String].Type: return "a list of strings"
        case is [Int].Type: return "a list of integers"
        case is [Any].Type: return "a list"
        case is [String: Any].Type: return "an object"
        default: return "\(type)"
        }
    }
}
