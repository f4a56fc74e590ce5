import ArgumentParser
import Foundation
import Lancet

/// How an error thrown by a running subcommand ends the process: usage, option and recipe errors
/// (`ValidationError`, `RecipeError`) exit with 64 after the message and the subcommand's usage; everything
/// else is a failure while working and exits with 1 after the message alone (Foundation's file errors in
/// words, `IOErrorText`). Help requests and explicit exit codes go through ArgumentParser as usual.
enum CommandFailure {
    /// Prints `error` for `command` and exits with its code.
    static func exit(_ error: Error, in command: ParsableCommand.Type) -> Never {
        let usageMessage: String?
        switch error {
        case let e as ValidationError: usageMessage = e.message
        case let e as RecipeError: usageMessage = e.description
        default: usageMessage = nil
        }
        if let usageMessage {
            let name = LancetCommand.configuration.commandName ?? "lancet"
            let usage = LancetCommand.usageString(for: command)
            Console.error("Error: \(usageMessage)\nUsage: \(usage)\n  See '\(name) \(command._commandName) --help' for more information.")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        if let words = IOErrorText.describe(error) {
            Console.error("Error: \(words)")
            Foundation.exit(ExitCode.failure.rawValue)
        }
        LancetCommand.exit(withError: error)
    }
}
