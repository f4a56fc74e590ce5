import ArgumentParser
import Lancet

/// The error for a first argument that names no subcommand (`lancet evl`), with the nearest subcommand
/// when one is close: "unknown subcommand 'evl' (did you mean 'eval'?)".
enum SubcommandSuggestion {
    /// Why `arguments` do not start with a subcommand, or nil when they do (or start with an option such as
    /// `--help`, which the parser handles).
    /// `lancet help NAME` is checked the same way.
    static func problem(_ arguments: [String], subcommands: [ParsableCommand.Type]) -> String? {
        let named = arguments.first == "help" ? arguments.dropFirst() : arguments[...]
        guard let first = named.first, !first.hasPrefix("-") else { return nil }
        let names = subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        return "unknown subcommand '\(first)'\(Suggestion.hint(for: first, in: names)); subcommands: \(names.dropLast().joined(separator: ", "))"
    }
}
