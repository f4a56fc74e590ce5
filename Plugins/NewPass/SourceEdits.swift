import Foundation

/// Text edits of existing files: a family's registration table, `Package.swift` and the umbrella module.
/// Each returns nil when it cannot find its anchor, and the command then prints what to add by hand.
enum SourceEdits {
    /// `source` with `<Type>.self` appended to the `all` array literal of `enum <table>`, or nil.
    static func appendingToTable(_ source: String, table: String, typeName: String) -> String? {
        guard let enumRange = source.range(of: "enum \(table)"),
              let allRange = source.range(of: "static let all", range: enumRange.upperBound..<source.endIndex),
              let equals = source[allRange.upperBound...].firstIndex(of: "="),
              let open = source[equals...].firstIndex(of: "[") else { return nil }
        // The literal's closing bracket (the type annotation's brackets come before `=`).
        var depth = 0
        var close: String.Index?
        for index in source[open...].indices {
            if source[index] == "[" { depth += 1 }
            if source[index] == "]" { depth -= 1 }
            if depth == 0 { close = index; break }
        }
        guard let close else { return nil }
        let body = source[source.index(after: open)..<close]
        let entry = "\(typeName).self"
        if body.contains(entry) { return source }
        let trimmed = body.trimmingCharacters(in: .whitespacesAndNewlines)
        var result = source
        if body.contains("\n") {
            // Multi-line literal: a new line before the closing bracket, indented like the entries.
            let lineStart = source[..<close].lastIndex(of: "\n").map { source.index(after: $0) } ?? close
            let closingIndent = String(source[lineStart..<close])
            let indent = closingIndent + "    "
            var head = String(source[..<lineStart])
            if !trimmed.isEmpty && !trimmed.hasSuffix(",") {
                // Add the missing trailing comma after the last entry.
                let last = head.lastIndex { !$0.isWhitespace }!
                head.insert(",", at: head.index(after: last))
            }
            result = head + indent + entry + ",\n" + source[lineStart...]
        } else {
            let separator = trimmed.isEmpty ? "" : (trimmed.hasSuffix(",") ? " " : ", ")
            result = String(source[...open]) + trimmed + separator + entry + String(source[close...])
        }
        return result
    }

    /// `manifest` with the family's target before the umbrella `Lancet` target (which also gains it as a
    /// dependency), or nil when the umbrella target is not written as `.target(name: "Lancet", dependencies: [`.
    static func addingTarget(_ manifest: String, family: PassFamily) -> String? {
        guard !manifest.contains("name: \"\(family.target)\"") else { return manifest }
        let umbrella = ".target(name: \"Lancet\", dependencies: ["
        guard let range = manifest.range(of: umbrella) else { return nil }
        let lineStart = manifest[..<range.lowerBound].lastIndex(of: "\n").map { manifest.index(after: $0) } ?? range.lowerBound
        let indent = String(manifest[lineStart..<range.lowerBound])
        let settings = manifest.contains("let numericSettings") ? ", swiftSettings: numericSettings" : ""
        let target = "\(indent).target(name: \"\(family.target)\", dependencies: [\"LancetSurgery\"]\(settings)),\n"
        var result = manifest
        result.insert(contentsOf: "\"\(family.target)\", ", at: range.upperBound)
        result.insert(contentsOf: target, at: lineStart)
        return result
    }

    /// `manifest` with the family's test target after the last one-line `.testTarget(…),`, or nil.
    static func addingTestTarget(_ manifest: String, family: PassFamily) -> String? {
        guard !manifest.contains("name: \"\(family.testTarget)\"") else { return manifest }
        var lines = manifest.components(separatedBy: "\n")
        guard let last = lines.lastIndex(where: {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix(".testTarget(") && t.hasSuffix("),")
        }) else { return nil }
        let indent = String(lines[last].prefix { $0 == " " })
        lines.insert("\(indent).testTarget(name: \"\(family.testTarget)\", dependencies: [\"\(family.target)\"]),", at: last + 1)
        return lines.joined(separator: "\n")
    }

    /// The umbrella module's source with `@_exported import <target>` added among its exports, or nil.
    static func addingExport(_ umbrella: String, family: PassFamily) -> String? {
        let line = "@_exported import \(family.target)"
        guard !umbrella.contains(line) else { return umbrella }
        var lines = umbrella.components(separatedBy: "\n")
        guard let first = lines.firstIndex(where: { $0.hasPrefix("@_exported import ") }) else { return nil }
        let position = lines[first...].firstIndex { !$0.hasPrefix("@_exported import ") || $0 > line } ?? lines.endIndex
        lines.insert(line, at: position)
        return lines.joined(separator: "\n")
    }
}
