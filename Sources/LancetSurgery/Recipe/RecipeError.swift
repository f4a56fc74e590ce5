/// A problem with a recipe or a textual pipeline, located where it was written and printed as
/// `recipe.yaml:7:9 stages[0].passes[1].magnitude.sparsity: must be in [0, 1), got 1.5`.
///
/// The parser, the pass registry and `RecipeValidator` all report with this one type, so the CLI prints
/// every problem the same way and maps all of them to the bad-input exit code.
public struct RecipeError: Error, CustomStringConvertible, Equatable {
    /// Where the problem was written.
    public let location: SourceLocation
    /// The key path (`stages[0].passes[1].wanda.sparsity`), or empty.
    public let path: String
    /// What is wrong.
    public let reason: String

    /// Creates an error.
    public init(_ location: SourceLocation, path: String, _ reason: String) {
        self.location = location
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(location)" + (path.isEmpty ? "" : " \(path)") + ": \(reason)" }

    /// The error's source line with a caret under its column, when the error is on line `line` of
    /// `text` (two lines, for terminals), or nil when the location has no column.
    public func caret(in text: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard location.line >= 1, location.line <= lines.count, location.column >= 1 else { return nil }
        let line = lines[location.line - 1]
        let pad = String(line.prefix(location.column - 1).map { $0 == "\t" ? "\t" : " " })
        return "\(line)\n\(pad)^"
    }
}
