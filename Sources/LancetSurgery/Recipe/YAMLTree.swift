import Foundation
import Yams

/// Reads YAML text into an `OptionValue` tree with a location on every scalar, list and key, using
/// Yams' node API (not `Codable`) so that every later error can name a line and a column.
///
/// Scalars keep their text as written; plain `null`, `~`, `Null`, `NULL` and empty values become `null`,
/// and plain `True`/`TRUE`/`False`/`FALSE` become `true`/`false`, so that the recipe's types do not
/// depend on which spelling was used. Quoted scalars stay strings. Anchors, aliases and merge keys are
/// refused before Yams composes anything (`YAMLAliasScan`), so no alias is ever expanded.
enum YAMLTree {
    /// The document's root, or nil for an empty document (nothing but comments and blank lines).
    static func read(_ text: String, file: String) throws -> OptionValue? {
        if let refusal = YAMLAliasScan.firstAlias(in: text, file: file) { throw refusal }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw recipeError(error, text: text, file: file)
        }
        return try node.map { try value($0, file: file) }
    }

    /// Converts a Yams node.
    static func value(_ node: Node, file: String) throws -> OptionValue {
        func at(_ mark: Mark?) -> SourceLocation? { mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) } }
        switch node {
        case let .scalar(s):
            let quoted = s.style != .plain
            return .written(quoted ? s.string : normalizedPlain(s.string), quoted: quoted, location: at(s.mark))
        case let .sequence(items):
            return .list(try items.map { try value($0, file: file) }, location: at(items.mark))
        case let .mapping(pairs):
            return .object(try pairs.map { pair in
                guard case let .scalar(key) = pair.key else {
                    throw RecipeError(at(pair.key.mark) ?? SourceLocation(file: file), path: "", "mapping keys must be plain names, not lists or mappings")
                }
                if let problem = PrintableText.problem(key.string) {
                    throw RecipeError(at(key.mark) ?? SourceLocation(file: file), path: "", "the key \(OptionValue.quoted(key.string)) \(problem)")
                }
                return (key: key.string, value: try value(pair.value, file: file), location: at(key.mark))
            })
        case let .alias(alias):
            throw YAMLAliasScan.refusal(at(alias.mark) ?? SourceLocation(file: file), "found an alias")
        }
    }

    /// The canonical spelling of a plain scalar that YAML reads as null or a boolean.
    static func normalizedPlain(_ s: String) -> String {
        switch s {
        case "", "~", "null", "Null", "NULL": "null"
        case "true", "True", "TRUE": "true"
        case "false", "False", "FALSE": "false"
        default: s
        }
    }

    /// A Yams error as a located recipe error.
    static func recipeError(_ error: YamlError, text: String, file: String) -> RecipeError {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        func while_(_ context: YamlError.Context?) -> String {
            context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return RecipeError(at(mark), path: "", "invalid YAML: \(problem)\(while_(context))")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return RecipeError(at(context.mark), path: "", "invalid YAML: duplicate key \(keys) in one mapping")
        case let .reader(problem, offset, _, _):
            var location = SourceLocation(file: file)
            if let offset {
                let before = text.prefix(offset)
                let line = before.count { $0 == "\n" } + 1
                let column = before.count - (before.lastIndex(of: "\n").map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1
                location = SourceLocation(file: file, line: line, column: column)
            }
            return RecipeError(location, path: "", "invalid YAML: \(problem)")
        default:
            return RecipeError(SourceLocation(file: file), path: "", "invalid YAML: \(error)")
        }
    }
}
