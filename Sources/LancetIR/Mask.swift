import LancetTensor

/// Which elements of a weight survive a cut: one byte per element, 1 = kept, 0 = pruned.
///
/// The IR keeps masks beside their weights; the weight holds exact zeros where the mask is 0 (the
/// verifier checks it), so the runtime multiplies by the weight as it is and export writes the zeros.
public struct Mask: Sendable, Equatable {
    /// The shape of the masked weight.
    public let shape: [Int]
    /// 1 where the element is kept, 0 where it is pruned, row-major.
    public var keep: [UInt8]

    /// A mask that keeps everything.
    public init(keepingAllOf shape: [Int]) {
        self.shape = shape
        keep = [UInt8](repeating: 1, count: Tensor.elementCount(shape))
    }

    /// A mask from explicit keep bytes.
    public init(shape: [Int], keep: [UInt8]) {
        precondition(keep.count == Tensor.elementCount(shape), "Mask: \(keep.count) entries for shape \(shape)")
        self.shape = shape
        self.keep = keep
    }

    /// The number of elements pruned.
    public var prunedCount: Int {
        keep.count - keep.reduce(0) { $0 + Int($1) }
    }

    /// The fraction of elements kept.
    public var density: Double {
        keep.isEmpty ? 1 : Double(keep.count - prunedCount) / Double(keep.count)
    }

    /// The fraction of elements pruned.
    public var sparsity: Double { 1 - density }

    /// Zeroes the elements of `weight` that the mask prunes.
    public func apply(to weight: inout Tensor) {
        precondition(weight.shape == shape, "Mask: shape \(shape) applied to \(weight.shape)")
        weight.withUnsafeMutableBufferPointer { w in
            for i in 0..<keep.count where keep[i] == 0 { w[i] = 0 }
        }
    }

    /// Combines two masks: an element is kept when both keep it.
    public func intersection(_ other: Mask) -> Mask {
        precondition(shape == other.shape, "Mask: intersecting \(shape) with \(other.shape)")
        return Mask(shape: shape, keep: zip(keep, other.keep).map { $0 & $1 })
    }
}
