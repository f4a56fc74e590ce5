import Foundation

/// A tool's subcommands and arguments as its own parser declares them (swift-argument-parser's
/// `--experimental-dump-help`), used to check a documented command line without running it: the subcommand
/// exists, every option is one of its options and has its value, the positionals fit, nothing required is missing.
struct CommandLineShape {
    /// One argument of a command.
    struct Argument {
        var kind: String            // positional, option, flag
        var names: [String]         // "--json", "-o"
        var valueName: String
        var isOptional: Bool
        var isRepeating: Bool
        var parsingStrategy: String // default, upToNextOption, remaining, …
    }

    /// One command: its name, arguments and subcommands.
    struct Command {
        var name: String
        var arguments: [Argument]
        var subcommands: [Command]
    }

    /// What a command line means: the command path and each argument's values by value name.
    struct Parse {
        var command: [String]
        var values: [(name: String, value: String)]
        var problems: [String]
    }

    var root: Command

    /// The shape of the executable at `path`, read from its `--experimental-dump-help`.
    init(executable path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--experimental-dump-help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], let command = json["command"] as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path])
        }
        root = Self.command(command)
    }

    private static func command(_ json: [String: Any]) -> Command {
        let arguments = (json["arguments"] as? [[String: Any]] ?? []).map { a in
            Argument(kind: a["kind"] as? String ?? "",
                     names: (a["names"] as? [[String: Any]] ?? []).map { n in (n["kind"] as? String == "long" ? "--" : "-") + (n["name"] as? String ?? "") },
                     valueName: a["valueName"] as? String ?? "", isOptional: a["isOptional"] as? Bool ?? true,
                     isRepeating: a["isRepeating"] as? Bool ?? false, parsingStrategy: a["parsingStrategy"] as? String ?? "default")
        }
        return Command(name: json["commandName"] as? String ?? "", arguments: arguments,
                       subcommands: (json["subcommands"] as? [[String: Any]] ?? []).map(command))
    }

    /// Checks `words` (the arguments after the executable) against the declared shape.
    func parse(_ words: [String]) -> Parse {
        var command = root
        var path: [String] = []
        var rest = words[...]
        while let word = rest.first, let sub = command.subcommands.first(where: { $0.name == word }) {
            command = sub; path.append(word); rest = rest.dropFirst()
        }
        var result = Parse(command: path, values: [], problems: [])
        if !command.subcommands.isEmpty, command.arguments.allSatisfy({ $0.kind != "positional" }), let word = rest.first, !word.hasPrefix("-") {
            result.problems.append("'\(word)' is not a subcommand of '\(([root.name] + path).joined(separator: " "))'")
            return result
        }
        let positionals = command.arguments.filter { $0.kind == "positional" }
        var positionalIndex = 0
        var seen: Set<String> = []
        var onlyPositionals = false
        while let word = rest.first {
            rest = rest.dropFirst()
            if !onlyPositionals, word == "--" { onlyPositionals = true; continue }
            if !onlyPositionals, word.hasPrefix("-"), word.count > 1, Double(word) == nil {
                let name = String(word.prefix { $0 != "=" })
                guard let argument = command.arguments.first(where: { $0.names.contains(name) }) else {
                    result.problems.append("unknown option '\(name)' of '\(([root.name] + path).joined(separator: " "))'")
                    continue
                }
                seen.insert(argument.valueName)
                guard argument.kind == "option" else { continue }
                if name != word { result.values.append((argument.valueName, String(word.dropFirst(name.count + 1)))); continue }
                guard let value = rest.first else { result.problems.append("option '\(name)' needs a value"); break }
                result.values.append((argument.valueName, value)); rest = rest.dropFirst()
                if argument.parsingStrategy == "upToNextOption" {
                    while let more = rest.first, !more.hasPrefix("-") { result.values.append((argument.valueName, more)); rest = rest.dropFirst() }
                }
                continue
            }
            guard positionalIndex < positionals.count else {
                result.problems.append("unexpected argument '\(word)' of '\(([root.name] + path).joined(separator: " "))'")
                continue
            }
            let argument = positionals[positionalIndex]
            result.values.append((argument.valueName, word)); seen.insert(argument.valueName)
            if !argument.isRepeating { positionalIndex += 1 }
        }
        for argument in command.arguments where !argument.isOptional && !seen.contains(argument.valueName) {
            result.problems.append("'\(([root.name] + path).joined(separator: " "))' needs <\(argument.valueName)>")
        }
        return result
    }
}
