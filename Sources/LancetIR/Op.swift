import LancetTensor

/// One operation kind of the block IR: its shapes, forward, vector-Jacobian product and cost.
///
/// Values flowing between nodes are matrices `[tokens, features]`: every row is one token of one of
/// the sequences in the batch (see `ExecutionContext`). Ops are value types; their attributes are
/// plain stored properties and are listed in `attributes` for printing and serialisation. Parameters
/// live in the enclosing `Block`, referenced by name, so passes edit weights without touching ops.
///
/// A pass target can introduce a new op: conform a type to `Op` and register it with `OpRegistry`.
public protocol Op: Sendable {
    /// The op's kind as printed and serialised, e.g. `linear`.
    static var kind: String { get }

    /// Names of the block parameters this op reads (weights, biases, factors), in a fixed order.
    var parameterNames: [String] { get }

    /// The parameters local fitting may change (the regional fit optimises them, against the block's output):
    /// weights and factors, not biases or norm scales. None by default; an op opts its parameters in.
    var fittableParameters: [String] { get }

    /// Everything that defines the op besides its kind, for the printer and for serialisation: sizes,
    /// settings and the names of the parameters it reads. `init(attributes:)` rebuilds an equal op.
    var attributes: [String: OpAttribute] { get }

    /// Rebuilds the op from `attributes`; throws `OpShapeError` naming a missing or ill-typed attribute.
    init(attributes: [String: OpAttribute]) throws

    /// Feature widths of the outputs for the given input widths; throws `OpShapeError` with the reason
    /// when the inputs or the referenced parameters do not fit.
    func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int]

    /// Computes the outputs from the inputs (each `[tokens, features]`).
    func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor]

    /// The vector-Jacobian product: given the forward's inputs and outputs and the gradients of a loss
    /// with respect to the outputs, returns the gradients with respect to the inputs (nil where an input
    /// does not need one) and adds the parameter gradients into `parameterGradients` (by parameter name).
    func backward(
        _ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor],
        parameters: ParameterLookup, context: ExecutionContext,
        parameterGradients: inout [String: Tensor]
    ) throws -> [Tensor?]

    /// Floating-point operations and bytes moved for `tokens` tokens with the given input widths.
    func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost
}

extension Op {
    public var fittableParameters: [String] { [] }
}

/// A shape mismatch detected while inferring an op's output widths.
public struct OpShapeError: Error, CustomStringConvertible {
    /// Why the op does not fit its inputs or parameters.
    public let reason: String
    /// Creates an error with a reason.
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The work an op does: arithmetic and memory traffic, for the cost model and achieved-GFLOP/s reports.
public struct OpCost: Sendable, Equatable {
    /// Floating-point operations (a multiply-add counts as two).
    public var flops: Double
    /// Bytes of parameters read (activations are not counted).
    public var parameterBytes: Double
    /// Creates a cost.
    public init(flops: Double = 0, parameterBytes: Double = 0) {
        self.flops = flops
        self.parameterBytes = parameterBytes
    }
    /// The sum of two costs.
    public static func + (a: OpCost, b: OpCost) -> OpCost {
        OpCost(flops: a.flops + b.flops, parameterBytes: a.parameterBytes + b.parameterBytes)
    }
}

/// An attribute value of an op, for printing and serialisation.
public enum OpAttribute: Sendable, Equatable, CustomStringConvertible {
    case int(Int), double(Double), bool(Bool), string(String), ints([Int]), doubles([Double])

    public var description: String {
        switch self {
        case let .int(v): String(v)
        case let .double(v): String(v)
        case let .bool(v): String(v)
        case let .string(v): v
        case let .ints(v): "[" + v.map(String.init).joined(separator: ", ") + "]"
        case let .doubles(v): "[" + v.map { String($0) }.joined(separator: ", ") + "]"
        }
    }

    /// The integer payload.
    public var int: Int? { if case let .int(v) = self { return v }; return nil }
    /// The numeric payload (int or double).
    public var double: Double? {
        switch self {
        case let .double(v): return v
        case let .int(v): return Double(v)
        default: return nil
        }
    }
    /// The boolean payload.
    public var bool: Bool? { if case let .bool(v) = self { return v }; return nil }
    /// The string payload.
    public var string: String? { if case let .string(v) = self { return v }; return nil }
    /// The integer-array payload.
    public var ints: [Int]? { if case let .ints(v) = self { return v }; return nil }
    /// The double-array payload.
    public var doubles: [Double]? {
        if case let .doubles(v) = self { return v }
        if case let .ints(v) = self { return v.map(Double.init) }
        return nil
    }
}

extension [String: OpAttribute] {
    /// The integer attribute `key`, or an error naming it.
    public func int(_ key: String) throws -> Int {
        guard let v = self[key]?.int else { throw OpShapeError("attribute '\(key)' must be an integer") }
        return v
    }
    /// The numeric attribute `key`, or an error naming it.
    public func double(_ key: String) throws -> Double {
        guard let v = self[key]?.double else { throw OpShapeError("attribute '\(key)' must be a number") }
        return v
    }
    /// The boolean attribute `key`, or an error naming it.
    public func bool(_ key: String) throws -> Bool {
        guard let v = self[key]?.bool else { throw OpShapeError("attribute '\(key)' must be true or false") }
        return v
    }
    /// The string attribute `key`, or an error naming it.
    public func string(_ key: String) throws -> String {
        guard let v = self[key]?.string else { throw OpShapeError("attribute '\(key)' must be a string") }
        return v
    }
}

/// Read access to a block's parameters by name, as ops see them.
public protocol ParameterLookup {
    /// The parameter called `name`, or nil.
    func parameter(_ name: String) -> Tensor?
}

extension ParameterLookup {
    /// The parameter called `name`; a missing parameter is an `OpShapeError`.
    public func require(_ name: String) throws -> Tensor {
        guard let t = parameter(name) else { throw OpShapeError("parameter '\(name)' is missing") }
        return t
    }
}
