import ArgumentParser
import Foundation
import Lancet

/// `lancet passes`: every registered pass with its summary, scope and options.
struct PassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passes",
        abstract: "List the surgery passes with their scope, summary and options (key, type, default, help).")

    @Option(help: "Load passes from a plugin library (repeatable; explicit paths only).")
    var plugin: [String] = []

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        for p in plugin { try InputPath.require(p, "--plugin") }
    }

    func run() throws {
        let passes = try CommandSupport.registry(plugins: plugin).all
        if json {
            print(try JSONOutput.string(passes.map(PassListing.init)))
            return
        }
        if passes.isEmpty {
            print("no passes are registered")
            return
        }
        for (i, p) in passes.enumerated() {
            if i > 0 { print() }
            print("\(p.name)  [\(p.scope)\(p.needsCalibration ? ", calibrated" : "")]  \(p.summary)")
            let width = p.options.map { $0.key.count }.max() ?? 0
            let typeWidth = p.options.map { $0.type.count }.max() ?? 0
            for o in p.options {
                let key = o.key.padding(toLength: width, withPad: " ", startingAt: 0)
                let type = o.type.padding(toLength: typeWidth, withPad: " ", startingAt: 0)
                print("    \(key)  \(type)  = \(o.defaultValue)" + (o.help.isEmpty ? "" : "  \(o.help)"))
            }
        }
    }
}

/// One pass in `lancet passes --json`.
struct PassListing: Encodable {
    var name: String
    var summary: String
    var scope: String
    var needsCalibration: Bool
    var origin: String
    var options: [OptionDescriptor]

    init(_ d: PassDescriptor) {
        name = d.name
        summary = d.summary
        scope = d.scope
        needsCalibration = d.needsCalibration
        origin = d.origin
        options = d.options
    }

    enum CodingKeys: String, CodingKey {
        case name, summary, scope, origin, options
        case needsCalibration = "needs_calibration"
    }
}
