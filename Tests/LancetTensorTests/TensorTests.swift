import XCTest
@testable import LancetTensor

final class TensorTests: XCTestCase {
    func testMutatingACopyLeavesTheOriginalUnchanged() {
        let a = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        var b = a
        b[1, 2] = 60
        XCTAssertEqual(a[1, 2], 6)
        XCTAssertEqual(b[1, 2], 60)
        XCTAssertEqual(a.transposed().shape, [3, 2])
        XCTAssertEqual(a.transposed()[2, 1], 6)
    }
}
