import ArgumentParser
import Lancet

/// The `lancet` command-line tool.
@main
struct LancetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lancet",
        abstract: "Model surgery for transformer language models.",
        subcommands: [InspectCommand.self, TokenizeCommand.self, EvalCommand.self, GenerateCommand.self, BenchCommand.self,
                      RunCommand.self, ApplyCommand.self, ConvertCommand.self, CompareCommand.self, ValidateCommand.self, PassesCommand.self]
    )
}
