import LancetTensor

extension Tensor {
    /// ‖self − teacher‖² / ‖teacher‖² over all elements (the plain ‖self − teacher‖² when the teacher is
    /// zero): the block-output error that pass reports and fits measure against the dense block.
    public func relativeError(to teacher: Tensor) -> Double {
        withUnsafeBufferPointer { a in
            teacher.withUnsafeBufferPointer { b in
                var num = 0.0, den = 0.0
                for i in 0..<a.count {
                    let d = Double(a[i]) - Double(b[i])
                    num += d * d
                    den += Double(b[i]) * Double(b[i])
                }
                return den > 0 ? num / den : num
            }
        }
    }
}
