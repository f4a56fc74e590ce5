import Foundation

/// The simple commands of a shell snippet as words, the way `sh` splits them: lines joined at a trailing `\`,
/// `#` comments dropped, commands separated by newlines, `;`, `&&` and `||`, words split at blanks outside
/// quotes, quotes and backslashes removed. Enough for documentation snippets; no expansions, pipes or redirections.
enum ShellCommands {
    static func commands(in script: String) -> [[String]] {
        var commands: [[String]] = []
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var chars = Array(script)
        chars.append("\n")
        func endWord() { if inWord { words.append(word) }; word = ""; inWord = false }
        func endCommand() { endWord(); if !words.isEmpty { commands.append(words) }; words = [] }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if let q = quote {
                if c == q { quote = nil } else if q == "\"", c == "\\", i + 1 < chars.count { i += 1; word.append(chars[i]) } else { word.append(c) }
            } else if c == "\\", i + 1 < chars.count {
                if chars[i + 1] != "\n" { word.append(chars[i + 1]); inWord = true } else { endWord() }
                i += 1
            } else if c == "'" || c == "\"" {
                quote = c; inWord = true
            } else if c == "#", !inWord {
                while i + 1 < chars.count, chars[i + 1] != "\n" { i += 1 }
            } else if c == "\n" || c == ";" {
                endCommand()
            } else if (c == "&" || c == "|"), i + 1 < chars.count, chars[i + 1] == c {
                endCommand(); i += 1
            } else if c == " " || c == "\t" {
                endWord()
            } else {
                word.append(c); inWord = true
            }
            i += 1
        }
        endCommand()
        return commands
    }
}
