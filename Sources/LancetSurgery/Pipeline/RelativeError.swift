import LancetTensor

/// The sums behind a relative block-output error, ‖Y − T‖² and ‖T‖², accumulated a few windows at a time
/// so that a sweep can measure the error of outputs it never keeps. Adding the rows of a tensor in order, in
/// one or in several pieces, gives the same sums to the last bit.
public struct RelativeErrorSum: Sendable {
    /// Σ (y − t)².
    public private(set) var squaredError = 0.0
    /// Σ t².
    public private(set) var teacherEnergy = 0.0

    /// No rows yet.
    public init() {}

    /// Adds the first `rows.count` rows of `output` against rows `rows` of `teacher`.
    public mutating func add(_ output: Tensor, teacher: Tensor, rows: Range<Int>) {
        let columns = teacher.count / max(teacher.shape[0], 1)
        let n = rows.count * columns
        precondition(n <= output.count && rows.upperBound * columns <= teacher.count, "RelativeErrorSum: rows \(rows) out of range")
        output.withUnsafeBufferPointer { a in
            teacher.withUnsafeBufferPointer { t in
                let b = t.baseAddress! + rows.lowerBound * columns
                var num = squaredError, den = teacherEnergy
                for i in 0..<n {
                    let d = Double(a[i]) - Double(b[i])
                    num += d * d
                    den += Double(b[i]) * Double(b[i])
                }
                squaredError = num
                teacherEnergy = den
            }
        }
    }

    /// ‖Y − T‖² / ‖T‖² (the plain ‖Y − T‖² when the teacher is zero).
    public var value: Double { teacherEnergy > 0 ? squaredError / teacherEnergy : squaredError }
}

extension Tensor {
    /// ‖self − teacher‖² / ‖teacher‖² over all elements (the plain ‖self − teacher‖² when the teacher is
    /// zero): the block-output error that pass reports and fits measure against the dense block.
    public func relativeError(to teacher: Tensor) -> Double {
        precondition(count == teacher.count, "relativeError: \(shape) against \(teacher.shape)")
        var sum = RelativeErrorSum()
        sum.add(self, teacher: teacher, rows: 0..<teacher.shape[0])
        return sum.value
    }
}
