import XCTest
@testable import LancetTensor

final class SeededGeneratorTests: XCTestCase {
    func testSplitMix64MatchesItsPublishedFirstOutputForSeedZero() {
        var state: UInt64 = 0
        XCTAssertEqual(SeededGenerator.splitmix64(&state), 0xE220_A839_7B1D_CDAF)
    }

    func testXoshiro256StarStarMatchesItsDefinitionFromAKnownState() {
        // From state (1, 2, 3, 4): output = rotl(s1·5, 7)·9 = rotl(10, 7)·9 = 1280·9.
        var g = SeededGenerator(state: (1, 2, 3, 4))
        XCTAssertEqual(g.next(), 11520)
        // Next state by hand: t = 2<<17; s2 = 3^1 = 2; s3 = 4^2 = 6; s1 = 2^2 = 0; s0 = 1^6 = 7; s2 ^= t; s3 = rotl(6, 45).
        // Output uses s1 = 0, so it is 0.
        XCTAssertEqual(g.next(), 0)
    }

    func testTheSameSeedGivesTheSameSequenceAndOtherSeedsDiffer() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let sa = (0..<100).map { _ in a.next() }
        XCTAssertEqual(sa, (0..<100).map { _ in b.next() })
        XCTAssertNotEqual(sa, (0..<100).map { _ in c.next() })
        var n1 = SeededGenerator(seed: 7), n2 = SeededGenerator(seed: 7)
        XCTAssertEqual((0..<101).map { _ in n1.nextNormal() }, (0..<101).map { _ in n2.nextNormal() })
    }

    func testRegressionPinsForSeed42() {
        // Recorded from this implementation; a change here changes every seeded experiment.
        var g = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<3).map { _ in g.next() }, Self.pinnedBits)
        var n = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<4).map { _ in n.nextNormal() }, Self.pinnedNormals)
    }

    static let pinnedBits: [UInt64] = [1_546_998_764_402_558_742, 6_990_951_692_964_543_102, 12_544_586_762_248_559_009]
    static let pinnedNormals: [Float] = [-1.6132238, 1.5344874, 0.781692, -0.40019348]

    func testNormalSamplesHaveStandardMomentsAndTails() {
        var g = SeededGenerator(seed: 1)
        let n = 100_000
        let z = (0..<n).map { _ in Double(g.nextNormal()) }
        let mean = z.reduce(0, +) / Double(n)
        let variance = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        let within1 = Double(z.filter { abs($0) < 1 }.count) / Double(n)
        let within2 = Double(z.filter { abs($0) < 2 }.count) / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 0.01)  // σ/√n ≈ 0.0032
        XCTAssertEqual(variance, 1, accuracy: 0.02)  // √(2/n) ≈ 0.0045
        XCTAssertEqual(within1, 0.6827, accuracy: 0.006)  // √(p(1−p)/n) ≈ 0.0015
        XCTAssertEqual(within2, 0.9545, accuracy: 0.004)
        XCTAssertTrue(z.allSatisfy { $0.isFinite })
    }

    func testUniformFloatsAndBoundedIntegersAreInRangeAndUnbiased() {
        var g = SeededGenerator(seed: 2)
        let n = 70_000
        var buckets = [Int](repeating: 0, count: 10)
        for _ in 0..<n {
            let u = g.nextFloat()
            XCTAssertTrue(u >= 0 && u < 1)
            buckets[Int(u * 10)] += 1
        }
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<n { counts[g.nextIndex(below: 7)] += 1 }
        // χ² with 9 and 6 degrees of freedom; 99.9% quantiles are 27.9 and 22.5.
        func chi2(_ c: [Int]) -> Double {
            let e = Double(n) / Double(c.count)
            return c.reduce(0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
        }
        XCTAssertLessThan(chi2(buckets), 27.9)
        XCTAssertLessThan(chi2(counts), 22.5)
        XCTAssertEqual(g.nextIndex(below: 1), 0)
    }

    func testShuffleIsADeterministicPermutation() {
        var a = Array(0..<50), b = Array(0..<50)
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        a.shuffle(seededBy: &g1)
        b.shuffle(seededBy: &g2)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, Array(0..<50))
        XCTAssertEqual(a.sorted(), Array(0..<50))
        // Every element reaches every position about equally often.
        var firstPositions = [Int](repeating: 0, count: 5)
        for _ in 0..<5000 {
            var v = Array(0..<5)
            v.shuffle(seededBy: &g1)
            firstPositions[v[0]] += 1
        }
        for c in firstPositions { XCTAssertEqual(Double(c), 1000, accuracy: 120) }
    }

    func testSampledIndicesAreDistinctSortedUniformAndReproducible() {
        var g = SeededGenerator(seed: 11)
        XCTAssertEqual(g.sampleIndices(0, from: 5), [])
        XCTAssertEqual(g.sampleIndices(5, from: 5), [0, 1, 2, 3, 4])
        var hits = [Int](repeating: 0, count: 20)
        for _ in 0..<4000 {
            let s = g.sampleIndices(5, from: 20)
            XCTAssertEqual(s, s.sorted())
            XCTAssertEqual(Set(s).count, 5)
            for i in s { hits[i] += 1 }
        }
        for h in hits { XCTAssertEqual(Double(h), 1000, accuracy: 120) }  // 4000·5/20; sd ≈ 27
        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5)
        XCTAssertEqual(a.sampleIndices(100, from: 1_000_000), b.sampleIndices(100, from: 1_000_000))
    }

    func testRandomTensorsAreReproducibleAndScaled() {
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3)
        let a = Tensor.randomNormal(shape: [100, 100], std: 0.02, generator: &g1)
        XCTAssertEqual(a, Tensor.randomNormal(shape: [100, 100], std: 0.02, generator: &g2))
        XCTAssertEqual(frobenius(a) / 100, 0.02, accuracy: 0.001)
        XCTAssertEqual(g1.next(), g2.next(), "the caller's generator advances")
        let u = Tensor.randomUniform(shape: [1000], in: -2..<3, generator: &g1)
        XCTAssertTrue(u.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
        XCTAssertEqual(Double(u.scalars.reduce(0, +)) / 1000, 0.5, accuracy: 0.15)
    }
}
