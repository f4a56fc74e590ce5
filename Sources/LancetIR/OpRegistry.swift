/// Op kinds by name, so graphs can be rebuilt from text or archives. Built-in ops are always known; a pass
/// target that introduces an op registers it here.
public enum OpRegistry {
    nonisolated(unsafe) private static var kinds: [String: any Op.Type] = Dictionary(uniqueKeysWithValues: [
        RMSNormOp.self, LinearOp.self, RopeOp.self, AttentionOp.self, SiLUOp.self, MulOp.self, AddOp.self, MoEOp.self,
    ].map { ($0.kind, $0 as any Op.Type) })

    /// Makes `type` known under its kind; replacing a built-in kind is refused.
    public static func register(_ type: any Op.Type) throws {
        if let existing = kinds[type.kind], existing != type { throw OpShapeError("op kind '\(type.kind)' is already registered") }
        kinds[type.kind] = type
    }

    /// An op of `kind` rebuilt from its attributes.
    public static func make(kind: String, attributes: [String: OpAttribute]) throws -> any Op {
        guard let type = kinds[kind] else { throw OpShapeError("unknown op kind '\(kind)'") }
        return try type.init(attributes: attributes)
    }
}
