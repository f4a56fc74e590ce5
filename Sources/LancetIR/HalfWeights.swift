import LancetTensor

/// 16-bit copies of a model's matrices, which the runtime multiplies by in place of the Float ones
/// (`lancet eval|generate|bench --weights f16|bf16`): half the bytes read per decoded token.
///
/// Every rank-2 parameter of every block (linear weights and factors, routers, experts) and the output head are
/// rounded to the format once (a weight loaded from an F16 or BF16 file in the same format is used as it is: no
/// copy, and its Float values are never widened); the model itself is not changed, so surgery, export and `--weights f32` runs
/// see the exact Float weights. A matrix is found by the address of its Float tensor's storage, so the copies
/// serve exactly the model they were made from (and its unchanged tensors). Float remains the default: every
/// result Lancet reports is measured in Float unless it says otherwise.
public final class HalfWeights: @unchecked Sendable {
    /// The 16-bit format of the copies.
    public let format: HalfFormat
    /// Each copy with the Float tensor it was made from, retained so that its storage address (the key) cannot be
    /// reused by another tensor while the copies live.
    private var matrices: [UnsafeRawPointer: (source: Tensor, half: HalfMatrix)] = [:]

    /// The copies of `model`'s block matrices and head in `format`.
    public init(model: Model, format: HalfFormat) {
        self.format = format
        add(model.head)
        for block in model.blocks {
            for name in block.parameters.keys.sorted() {
                if let t = block.parameters[name], t.rank == 2 { add(t) }
            }
        }
    }

    private func add(_ t: Tensor) {
        guard t.count > 0, let key = Self.key(t), matrices[key] == nil else { return }
        matrices[key] = (t, HalfMatrix(t, format: format))
    }

    /// The storage address, read without widening a tensor that still holds 16-bit values.
    static func key(_ t: Tensor) -> UnsafeRawPointer? { t.count > 0 ? t.storageAddress : nil }

    /// The 16-bit copy of `weight`, if it is one of the model's matrices (same storage and shape).
    public func matrix(for weight: Tensor) -> HalfMatrix? {
        guard weight.rank == 2, let key = Self.key(weight), let entry = matrices[key], entry.source.shape == weight.shape else { return nil }
        return entry.half
    }

    /// Bytes of every copy.
    public var byteCount: Int { matrices.values.reduce(0) { $0 + $1.half.byteCount } }
}

/// The precision the runtime multiplies by: the model's own Float weights, or 16-bit copies of them.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Float32, exact (the default).
    case f32
    /// IEEE half precision copies.
    case f16
    /// bfloat16 copies.
    case bf16

    /// The 16-bit format, or nil for Float.
    public var halfFormat: HalfFormat? { HalfFormat(rawValue: rawValue) }
}
