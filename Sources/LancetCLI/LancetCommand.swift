import ArgumentParser
import Foundation
import Lancet

/// The `lancet` command-line tool.
///
/// Exit codes (`Docs/CLI.md`): 0 on success; 64 (`EX_USAGE`) for every usage, option and recipe error, including
/// an input path that does not exist, always with the failing subcommand's usage; 1 for a failure while working
/// (a file that cannot be read or written, a model that does not load, a numeric failure).
@main
struct LancetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lancet",
        abstract: "Model surgery for transformer language models.",
        discussion: "Exit codes: 0 success; 64 usage, option or recipe error (also: an input path that does not exist); 1 failure while working.",
        version: LancetVersion.current,
        subcommands: [InspectCommand.self, TokenizeCommand.self, EvalCommand.self, GenerateCommand.self, BenchCommand.self,
                      RunCommand.self, ApplyCommand.self, ConvertCommand.self, CompareCommand.self, ValidateCommand.self, PassesCommand.self,
                      MasksCommand.self]
    )

    /// Parses and runs a subcommand; a mistyped subcommand gets a suggestion, and an error thrown while a
    /// subcommand runs is reported with that subcommand's usage (`CommandFailure`).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        configureBLASThreads()
        do { try BuiltinOps.register() } catch { CommandFailure.exit(error, in: LancetCommand.self) }
        if let message = SubcommandSuggestion.problem(arguments, subcommands: configuration.subcommands) {
            Console.error("Error: \(message)\nUsage: \(usageString())\n  See 'lancet --help' for more information.")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        var command: ParsableCommand
        do { command = try parseAsRoot(arguments) } catch { exit(withError: error) }
        do { try command.run() } catch { CommandFailure.exit(error, in: type(of: command)) }
    }
}
