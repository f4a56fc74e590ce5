import ArgumentParser
import Foundation

/// What the tool writes to standard error: log lines and progress, which `--quiet` silences, and errors and
/// warnings, which always print. Standard output is for results only (with `--json`: one JSON object).
enum Console {
    /// Set by `--quiet`: no log lines and no progress.
    nonisolated(unsafe) static var quiet = false

    /// A `[lancet] …` log line, unless quiet.
    static func log(_ line: String) { if !quiet { write("[lancet] \(line)\n") } }

    /// Progress or table text as is (the caller adds newlines), unless quiet.
    static func progress(_ text: String) { if !quiet { write(text) } }

    /// An error or warning line: always printed.
    static func error(_ line: String) { write(line.hasSuffix("\n") ? line : line + "\n") }

    private static func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// `--quiet`, for the commands that print progress or log lines on standard error.
struct QuietOption: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print no progress bars or [lancet] log lines on standard error (errors and warnings still print).")
    var quiet = false

    /// Applies the flag to `Console`.
    func apply() { Console.quiet = quiet }
}
