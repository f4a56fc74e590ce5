import Foundation
import PackagePlugin

/// `swift package --allow-writing-to-package-directory new-pass NAME [--family Prune] [--scope block|model]`:
/// scaffolds a pass.
///
/// Writes `Sources/LancetPasses<Family>/<Type>.swift` (a complete pass with options, defaults, help, summary and
/// a YAML sample), appends it to the family's `<Family>Passes.all` table, and writes
/// `Tests/LancetPasses<Family>Tests/<Type>Tests.swift`. `--scope block` (the default) writes a `BlockPass`;
/// `--scope model` a `ModelPass` that uses the `ModelPassContext` services, and a test that runs it through a
/// standalone context. A family that does not exist yet gets its target folder and registration file, and
/// `Package.swift` and the umbrella `Lancet` module are edited to build and re-export it (or, when their layout
/// is not recognised, the lines to add are printed).
@main
struct NewPass: CommandPlugin {
    static let usage = "usage: swift package --allow-writing-to-package-directory new-pass NAME [--family Prune] [--scope block|model]"

    static let help = """
        \(usage)

          NAME              the pass's recipe key, kebab-case (e.g. scale-norms); its type is ScaleNorms
          --family FAMILY   the pass target LancetPasses<FAMILY> and its <FAMILY>Passes table (default: Prune)
          --scope SCOPE     block (default): a BlockPass, applied one block at a time, and its test;
                            model: a ModelPass over the whole model using the ModelPassContext services
                            (calibration sweep, hidden states), and its test through a standalone context
        """

    func performCommand(context: PluginContext, arguments: [String]) async throws {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(Self.help)
            return
        }
        var extractor = ArgumentExtractor(arguments)
        let families = extractor.extractOption(named: "family")
        let scopes = extractor.extractOption(named: "scope")
        let positional = extractor.remainingArguments
        guard positional.count == 1, families.count <= 1, scopes.count <= 1, !positional[0].hasPrefix("-") else {
            throw NewPassError(Self.usage)
        }
        let name = try PassName(positional[0])
        let family = try PassFamily(families.first ?? "Prune")
        let scope = try PassScope(scopes.first ?? "block")
        try Scaffold(root: context.package.directoryURL, name: name, family: family, scope: scope).run()
    }
}

/// The scaffolding of one pass into one package checkout.
struct Scaffold {
    let root: URL
    let name: PassName
    let family: PassFamily
    let scope: PassScope
    private let files = FileManager.default

    init(root: URL, name: PassName, family: PassFamily, scope: PassScope = .block) {
        self.root = root
        self.name = name
        self.family = family
        self.scope = scope
    }

    func run() throws {
        try checkNameIsFree()
        let sources = root.appendingPathComponent("Sources/\(family.target)")
        let tests = root.appendingPathComponent("Tests/\(family.testTarget)")
        let passFile = sources.appendingPathComponent("\(name.typeName).swift")
        let testFile = tests.appendingPathComponent("\(name.typeName)Tests.swift")
        for file in [passFile, testFile] where files.fileExists(atPath: file.path) {
            throw NewPassError("\(relative(file)) already exists")
        }
        var manual: [String] = []
        let newFamily: Bool
        if let table = try registrationFile(in: sources) {
            newFamily = false
            let source = try String(contentsOf: table, encoding: .utf8)
            guard let edited = SourceEdits.appendingToTable(source, table: family.table, typeName: name.typeName) else {
                throw NewPassError("\(relative(table)): cannot find the array literal of `\(family.table).all`; nothing written")
            }
            try write(edited, to: table, verb: "updated")
        } else {
            newFamily = true
            try files.createDirectory(at: sources, withIntermediateDirectories: true)
            try write(Templates.registration(family, first: name), to: sources.appendingPathComponent("\(family.table).swift"), verb: "created")
            manual += try editManifestAndUmbrella()
        }
        switch scope {
        case .block:
            try write(Templates.pass(name), to: passFile, verb: "created")
            try files.createDirectory(at: tests, withIntermediateDirectories: true)
            try write(Templates.test(name, family: family), to: testFile, verb: "created")
        case .model:
            try write(Templates.modelPass(name), to: passFile, verb: "created")
            try files.createDirectory(at: tests, withIntermediateDirectories: true)
            try write(Templates.modelTest(name, family: family), to: testFile, verb: "created")
        }
        if !manual.isEmpty {
            print("Add by hand (the layout was not recognised):")
            manual.forEach { print("  \($0)") }
        }
        if newFamily {
            print("New family \(family.name): add \(family.table).all where the families' tables are concatenated (BuiltinPasses).")
        }
        print("Next: edit \(relative(passFile)), then `swift build` and `swift test --filter \(name.typeName)Tests`.")
    }

    /// Refuses a key some pass in `Sources/` already declares.
    private func checkNameIsFree() throws {
        let declaration = "static let name = \"\(name.key)\""
        guard let walker = files.enumerator(at: root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil) else { return }
        for case let url as URL in walker where url.pathExtension == "swift" {
            if let text = try? String(contentsOf: url, encoding: .utf8), text.contains(declaration) {
                throw NewPassError("a pass named '\(name.key)' already exists in \(relative(url))")
            }
        }
    }

    /// The family's registration file (the `.swift` file of the target declaring `enum <Family>Passes`), or nil
    /// when the target folder does not exist; an existing folder without one is an error.
    private func registrationFile(in sources: URL) throws -> URL? {
        guard files.fileExists(atPath: sources.path) else { return nil }
        let candidates = try files.contentsOfDirectory(at: sources, includingPropertiesForKeys: nil).filter { $0.pathExtension == "swift" }
        for url in candidates.sorted(by: { $0.path < $1.path }) {
            if let text = try? String(contentsOf: url, encoding: .utf8), text.contains("enum \(family.table)") { return url }
        }
        throw NewPassError("\(relative(sources)) exists but no file in it declares `enum \(family.table)`; nothing written")
    }

    /// Adds the new family to `Package.swift` and to the umbrella module; returns what it could not add.
    private func editManifestAndUmbrella() throws -> [String] {
        var manual: [String] = []
        let manifestURL = root.appendingPathComponent("Package.swift")
        var manifest = try String(contentsOf: manifestURL, encoding: .utf8)
        if let edited = SourceEdits.addingTarget(manifest, family: family) {
            manifest = edited
        } else {
            manual.append("Package.swift: .target(name: \"\(family.target)\", dependencies: [\"LancetSurgery\"]), and \"\(family.target)\" in the dependencies of the Lancet target")
        }
        if let edited = SourceEdits.addingTestTarget(manifest, family: family) {
            manifest = edited
        } else {
            manual.append("Package.swift: .testTarget(name: \"\(family.testTarget)\", dependencies: [\"\(family.target)\"]),")
        }
        try write(manifest, to: manifestURL, verb: "updated")
        let umbrellaURL = root.appendingPathComponent("Sources/Lancet/Lancet.swift")
        if let umbrella = try? String(contentsOf: umbrellaURL, encoding: .utf8),
           let edited = SourceEdits.addingExport(umbrella, family: family) {
            try write(edited, to: umbrellaURL, verb: "updated")
        } else {
            manual.append("Sources/Lancet/Lancet.swift: @_exported import \(family.target)")
        }
        return manual
    }

    private func write(_ text: String, to url: URL, verb: String) throws {
        try text.write(to: url, atomically: true, encoding: .utf8)
        print("\(verb) \(relative(url))")
    }

    private func relative(_ url: URL) -> String {
        let base = root.standardizedFileURL.path + "/"
        let path = url.standardizedFileURL.path
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }
}
