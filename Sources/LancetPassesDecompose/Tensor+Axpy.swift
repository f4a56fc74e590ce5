import LancetTensor

extension Tensor {
    /// `self += scale · t` (same element count).
    mutating func add(_ t: Tensor, scale: Float = 1) {
        precondition(count == t.count, "Tensor.add: \(shape) and \(t.shape)")
        withUnsafeMutableBufferPointer { p in t.withUnsafeBufferPointer { q in axpy(alpha: scale, q.baseAddress!, p.baseAddress!, count: p.count) } }
    }
}
