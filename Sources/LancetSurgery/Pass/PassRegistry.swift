import Foundation
import LancetIR

/// A constructed pass of either scope.
public enum AnyPass: Sendable {
    /// A block-scope pass.
    case block(any BlockPass)
    /// A model-scope pass.
    case model(any ModelPass)

    /// The pass's recipe name.
    public var name: String {
        switch self {
        case let .block(p): type(of: p).name
        case let .model(p): type(of: p).name
        }
    }

    /// Runs the pass's static checks on `model`.
    public func validate(model: Model, targets: TargetSelection) throws {
        switch self {
        case let .block(p): try p.validate(model: model, targets: targets)
        case let .model(p): try p.validate(model: model, targets: targets)
        }
    }

    /// Why the blocks may come out with different sizes or sub-layers (`SurgeryPass.blockShapeVariation`).
    public func blockShapeVariation(model: Model, targets: TargetSelection) -> String? {
        switch self {
        case let .block(p): p.blockShapeVariation(model: model, targets: targets)
        case let .model(p): p.blockShapeVariation(model: model, targets: targets)
        }
    }
}

/// One option of a pass, for `lancet passes` and for validation.
public struct OptionDescriptor: Sendable, Codable, Equatable {
    /// The key.
    public var key: String
    /// `number`, `integer`, `boolean`, `string`, `list` or `object`.
    public var type: String
    /// The default as recipe text (`null` when the option is unset by default).
    public var defaultValue: String
    /// One line of help.
    public var help: String

    enum CodingKeys: String, CodingKey { case key, type, help, defaultValue = "default" }
}

/// A registered pass: metadata and a constructor from raw recipe options.
public struct PassDescriptor: Sendable {
    /// The recipe name.
    public let name: String
    /// One-line summary.
    public let summary: String
    /// `block` or `model`.
    public let scope: String
    /// The options, sorted by key.
    public let options: [OptionDescriptor]
    /// Where the pass comes from (`built-in` or a plugin path).
    public let origin: String
    /// Whether the pass needs calibration data (`SurgeryPass.needsCalibration`).
    public let needsCalibration: Bool
    /// Whether the recipe's `fit:` means something for the pass (every block pass; a model pass that
    /// declares `ModelPass.fitsLocally`).
    public let fitsLocally: Bool
    /// Whether the recipe's `targets:`/`ignore:` mean something for the pass (every block pass; a model pass
    /// that declares `ModelPass.readsTargets`).
    public let readsTargets: Bool
    let make: @Sendable (OptionValue, PassInvocation) throws -> AnyPass
}

/// The table of known passes. Pass targets contribute explicit tables (`PrunePasses.all`); the tables
/// are concatenated in one place (`BuiltinPasses`), plugins add theirs at load time. Duplicate or empty
/// names are an error at registration.
public final class PassRegistry: @unchecked Sendable {
    private var descriptors: [String: PassDescriptor] = [:]
    private let lock = NSLock()

    /// An empty registry.
    public init() {}

    /// A registry holding `passes`.
    public convenience init(_ passes: [any SurgeryPass.Type], origin: String = "built-in") throws {
        self.init()
        try register(passes, origin: origin)
    }

    /// Adds passes, all or none; throws when a name is empty, malformed or already registered.
    public func register(_ passes: [any SurgeryPass.Type], origin: String = "built-in") throws {
        lock.lock()
        defer { lock.unlock() }
        var added: [String: PassDescriptor] = [:]
        for type in passes {
            let d = try Self.describe(type, origin: origin)
            guard !d.name.isEmpty, d.name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "+" }) else {
                throw RegistryError(reason: "pass name '\(d.name)' (\(type)) must be non-empty lowercase letters, digits, '-' or '+'")
            }
            if let reserved = d.options.first(where: { RecipeParser.passEntryKeys.contains($0.key) }) {
                throw RegistryError(reason: "pass '\(d.name)' (\(type)) has an option named '\(reserved.key)', which recipes reserve for the pass entry's \(reserved.key)")
            }
            if let existing = descriptors[d.name] ?? added[d.name] {
                throw RegistryError(reason: "pass '\(d.name)' from \(origin) is already registered (from \(existing.origin))")
            }
            added[d.name] = d
        }
        descriptors.merge(added) { old, _ in old }
    }

    /// Every pass, sorted by name.
    public var all: [PassDescriptor] {
        lock.lock()
        defer { lock.unlock() }
        return descriptors.values.sorted { $0.name < $1.name }
    }

    /// The pass called `name`.
    public func descriptor(_ name: String) -> PassDescriptor? {
        lock.lock()
        defer { lock.unlock() }
        return descriptors[name]
    }

    /// Builds the pass of an invocation, checking the name, every option key and type, and the values.
    public func instantiate(_ invocation: PassInvocation) throws -> AnyPass {
        guard let d = descriptor(invocation.name) else {
            let hint = Suggestion.hint(for: invocation.name, in: all.map(\.name))
            throw RecipeError(invocation.location, path: invocation.path, "unknown pass '\(invocation.name)'\(hint); `lancet passes` lists them")
        }
        return try d.make(invocation.options, invocation)
    }

    static func describe<P: SurgeryPass>(_ type: P.Type, origin: String) throws -> PassDescriptor {
        let defaults = try OptionCoding.encode(P.defaultOptions)
        // The keys are the Options' stored properties (snake_case); help for anything else is a mistake, not a key.
        let properties = try OptionCoding.properties(of: P.defaultOptions, encoded: defaults, pass: P.name)
        let keys = Set(properties.map(\.key))
        if let stray = P.optionHelp.keys.sorted().first(where: { !keys.contains($0) }) {
            throw RegistryError(reason: "pass '\(P.name)' (\(type)) has help for '\(stray)', which is not one of its options ("
                                + (keys.isEmpty ? "none" : keys.sorted().joined(separator: ", ")) + ")")
        }
        let options = properties.sorted { $0.key < $1.key }.map { property -> OptionDescriptor in
            let value = defaults[property.key]
            return OptionDescriptor(key: property.key, type: property.type, defaultValue: OptionCoding.text(value, type: property.type),
                                    help: P.optionHelp[property.key] ?? "")
        }
        let modelPass = P.self as? any ModelPass.Type
        return PassDescriptor(name: P.name, summary: P.summary, scope: modelPass == nil ? "block" : "model", options: options, origin: origin,
                              needsCalibration: P.needsCalibration, fitsLocally: modelPass?.fitsLocally ?? true,
                              readsTargets: modelPass?.readsTargets ?? true) { raw, invocation in
            let optionsValue: P.Options = try OptionCoding.decode(P.self, raw, known: keys, defaults: defaults, invocation: invocation)
            let pass: P
            do { pass = try P(options: optionsValue) } catch let e as PassOptionError {
                let location = raw.location(ofKey: e.option) ?? invocation.location
                throw RecipeError(location, path: "\(invocation.path).\(P.name).\(e.option)", e.reason)
            }
            if let b = pass as? any BlockPass { return .block(b) }
            if let m = pass as? any ModelPass { return .model(m) }
            throw RecipeError(invocation.location, path: invocation.path, "pass '\(P.name)' is neither a block pass nor a model pass")
        }
    }
}

/// A problem with the registration tables themselves.
public struct RegistryError: Error, CustomStringConvertible {
    /// What is wrong.
    public let reason: String
    public var description: String { "pass registry: \(reason)" }
}

extension OptionValue {
    /// The location of a mapping's key, if written.
    func location(ofKey key: String) -> SourceLocation? {
        if case let .object(entries) = self { return entries.first { $0.key == key }?.location }
        return nil
    }
}
