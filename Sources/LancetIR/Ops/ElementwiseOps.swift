import LancetTensor

/// `y = x · σ(x)` elementwise.
public struct SiLUOp: Op {
    public static let kind = "silu"
    /// Creates the op.
    public init() {}
    public init(attributes: [String: OpAttribute]) {}
    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] { [:] }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 1 else { throw OpShapeError("silu takes 1 input, got \(inputs.count)") }
        return inputs
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        let x = inputs[0]
        var y = Tensor(uninitializedShape: x.shape)
        y.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { xp in
                let (source, target) = (xp.baseAddress!, out.baseAddress!)
                forEachPart(rows: xp.count) { part in silu(source + part.lowerBound, count: part.count, out: target + part.lowerBound) }
            }
        }
        return [y]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        let x = inputs[0], dy = outputGradients[0]
        return [Tensor(shape: x.shape) { dx in
            x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in
                siluBackward(xp.baseAddress!, dy: gp.baseAddress!, count: xp.count, dx: dx.baseAddress!)
            }}
        }]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost {
        OpCost(flops: 4 * Double(tokens * inputs[0]))
    }
}

/// `y = a ⊙ b` elementwise.
public struct MulOp: Op {
    public static let kind = "mul"
    /// Creates the op.
    public init() {}
    public init(attributes: [String: OpAttribute]) {}
    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] { [:] }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 2, inputs[0] == inputs[1] else { throw OpShapeError("mul takes 2 inputs of equal width, got \(inputs)") }
        return [inputs[0]]
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        [Elementwise.product(inputs[0], inputs[1])]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        [Elementwise.zip(outputGradients[0], inputs[1], *), Elementwise.zip(outputGradients[0], inputs[0], *)]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost { OpCost(flops: Double(tokens * inputs[0])) }
}

/// `y = a + b` elementwise (the residual connections).
public struct AddOp: Op {
    public static let kind = "add"
    /// Creates the op.
    public init() {}
    public init(attributes: [String: OpAttribute]) {}
    public var parameterNames: [String] { [] }
    public var attributes: [String: OpAttribute] { [:] }

    public func outputFeatures(inputs: [Int], parameters: ParameterLookup) throws -> [Int] {
        guard inputs.count == 2, inputs[0] == inputs[1] else { throw OpShapeError("add takes 2 inputs of equal width, got \(inputs)") }
        return [inputs[0]]
    }

    public func forward(_ inputs: [Tensor], parameters: ParameterLookup, context: ExecutionContext) throws -> [Tensor] {
        [Elementwise.sum(inputs[0], inputs[1])]
    }

    public func backward(_ inputs: [Tensor], outputs: [Tensor], outputGradients: [Tensor], parameters: ParameterLookup,
                         context: ExecutionContext, parameterGradients: inout [String: Tensor]) throws -> [Tensor?] {
        [outputGradients[0], outputGradients[0]]
    }

    public func cost(tokens: Int, inputs: [Int], parameters: ParameterLookup) -> OpCost { OpCost(flops: Double(tokens * inputs[0])) }
}

/// Elementwise maps over tensors, used by the simple ops.
public enum Elementwise {
    /// `f` applied to every element.
    @inlinable public static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        y.withUnsafeMutableBufferPointer { out in x.withUnsafeBufferPointer { xp in for i in 0..<xp.count { out[i] = f(xp[i]) } } }
        return y
    }

    /// `f` applied to corresponding elements of two tensors of the same shape.
    @inlinable public static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "Elementwise: shapes \(a.shape) and \(b.shape)")
        var y = Tensor(uninitializedShape: a.shape)
        y.withUnsafeMutableBufferPointer { out in
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in for i in 0..<ap.count { out[i] = f(ap[i], bp[i]) } } }
        }
        return y
    }

    /// `a ⊙ b`, on every core for a large tensor (the forward of `mul`; `zip` with a closure would not vectorise there).
    public static func product(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, product: true) }

    /// `a + b`, on every core for a large tensor (the forward of `add`).
    public static func sum(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, product: false) }

    /// `a ⊙ b` or `a + b`, split over the cores by `forEachPart`.
    static func combine(_ a: Tensor, _ b: Tensor, product: Bool) -> Tensor {
        precondition(a.shape == b.shape, "Elementwise: shapes \(a.shape) and \(b.shape)")
        var y = Tensor(uninitializedShape: a.shape)
        y.withUnsafeMutableBufferPointer { out in
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                let (target, first, second) = (out.baseAddress!, ap.baseAddress!, bp.baseAddress!)
                forEachPart(rows: ap.count) { part in
                    if product {
                        for i in part { target[i] = first[i] * second[i] }
                    } else {
                        for i in part { target[i] = first[i] + second[i] }
                    }
                }
            }}
        }
        return y
    }

    /// e^x in single precision.
    @inlinable public static func exp(_ x: Float) -> Float { _expf(x) }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _expf(_ x: Float) -> Float { Glibc.expf(x) }
#else
import Darwin
@usableFromInline func _expf(_ x: Float) -> Float { Darwin.expf(x) }
#endif
