import Foundation

/// Op kinds by name, so graphs can be rebuilt from text or archives. Built-in ops are always known; a pass
/// target or a plugin (`LancetPlugin.ops`) that introduces an op registers it here, and from then on archives
/// and checkpoints holding it load.
public enum OpRegistry {
    nonisolated(unsafe) private static var kinds: [String: any Op.Type] = Dictionary(uniqueKeysWithValues: [
        RMSNormOp.self, LinearOp.self, RopeOp.self, AttentionOp.self, SiLUOp.self, MulOp.self, AddOp.self, MoEOp.self,
    ].map { ($0.kind, $0 as any Op.Type) })
    private static let lock = NSLock()

    /// Makes `type` known under its kind; a kind taken by another type (a built-in one included) is refused.
    /// Registering the same type again is harmless.
    public static func register(_ type: any Op.Type) throws { try register([type]) }

    /// Makes every type known, all or none (see `conflict(with:)`).
    public static func register(_ types: [any Op.Type]) throws {
        lock.lock()
        defer { lock.unlock() }
        if let problem = conflictLocked(types) { throw OpShapeError(problem) }
        for type in types { kinds[type.kind] = type }
    }

    /// Why `types` cannot all be registered (a kind already taken by another type, an empty kind, or one kind
    /// twice), or nil.
    public static func conflict(with types: [any Op.Type]) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return conflictLocked(types)
    }

    private static func conflictLocked(_ types: [any Op.Type]) -> String? {
        var seen: [String: any Op.Type] = [:]
        for type in types {
            guard !type.kind.isEmpty else { return "op \(type) has an empty kind" }
            if let existing = kinds[type.kind] ?? seen[type.kind], existing != type { return "op kind '\(type.kind)' is already registered" }
            seen[type.kind] = type
        }
        return nil
    }

    /// The type registered under `kind`, if any.
    public static func type(of kind: String) -> (any Op.Type)? {
        lock.lock()
        defer { lock.unlock() }
        return kinds[kind]
    }

    /// An op of `kind` rebuilt from its attributes.
    public static func make(kind: String, attributes: [String: OpAttribute]) throws -> any Op {
        guard let type = type(of: kind) else { throw OpShapeError("unknown op kind '\(kind)' (a plugin that defines it must be loaded with --plugin)") }
        return try type.init(attributes: attributes)
    }
}
