import Foundation

/// A seeded fuzz campaign: `count` cases of each kind, generated from `seed`, run on `jobs` processes at a
/// time, tallied per kind and verdict.
public struct FuzzCampaign: Sendable {
    /// The inputs every case mutates.
    public let fixtures: FuzzFixtures
    /// The runner.
    public let runner: FuzzRunner
    /// The campaign seed.
    public let seed: UInt64

    /// A campaign over the given fixtures.
    public init(fixtures: FuzzFixtures, runner: FuzzRunner, seed: UInt64) {
        self.fixtures = fixtures
        self.runner = runner
        self.seed = seed
    }

    /// Case `index` of `kind` (the same case for the same seed, every time).
    public func generate(_ kind: FuzzKind, index: Int) -> FuzzCase {
        var r = FuzzRandom(seed: seed, kind: kind, index: index)
        switch kind {
        case .gguf: return GGUFMutations.make(fixtures, index: index, random: &r)
        case .safetensors: return SafetensorsMutations.make(fixtures, index: index, random: &r)
        case .config: return ConfigMutations.make(fixtures, index: index, random: &r)
        case .tokenizer: return TokenizerMutations.make(fixtures, index: index, random: &r)
        case .recipe: return RecipeMutations.make(fixtures, index: index, random: &r)
        case .archive: return ArchiveMutations.make(fixtures, index: index, random: &r)
        }
    }

    /// Runs `cases` on `jobs` concurrent workers, calling `progress` after each (from any thread).
    public func run(_ cases: [FuzzCase], jobs: Int = 2, progress: (@Sendable (FuzzResult) -> Void)? = nil) -> [FuzzResult] {
        run(count: cases.count, jobs: jobs, progress: progress) { cases[$0] }
    }

    /// Runs `count` cases made on demand by `make` (a case's files are held only while it runs, so a long
    /// campaign needs the memory of `jobs` cases, not of all of them).
    public func run(count: Int, jobs: Int = 2, progress: (@Sendable (FuzzResult) -> Void)? = nil,
                    make: @escaping @Sendable (Int) -> FuzzCase) -> [FuzzResult] {
        let results = ResultBox(count: count)
        let next = ResultBox.Counter()
        let runner = self.runner
        DispatchQueue.concurrentPerform(iterations: max(1, jobs)) { _ in
            while let i = next.take(below: count) {
                let r = runner.run(make(i))
                results.set(i, r)
                progress?(r)
            }
        }
        return results.values
    }
}

/// Results written by concurrent workers.
final class ResultBox: @unchecked Sendable {
    private var slots: [FuzzResult?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: FuzzResult) {
        lock.lock()
        slots[i] = r
        lock.unlock()
    }

    var values: [FuzzResult] { slots.compactMap { $0 } }

    /// Hands out case numbers to workers.
    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()

        func take(below n: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard value < n else { return nil }
            value += 1
            return value - 1
        }
    }
}

/// Counts of a campaign's results per kind and verdict, and the failures in full.
public struct FuzzSummary: Sendable {
    /// The results.
    public let results: [FuzzResult]

    /// A summary of `results`.
    public init(_ results: [FuzzResult]) { self.results = results }

    /// The results that are failures of Lancet.
    public var failures: [FuzzResult] { results.filter { $0.verdict.isFailure } }

    /// Refusals whose message does not name the input file.
    public var unnamedRefusals: [FuzzResult] { results.filter { $0.verdict == .refused && !$0.refusalNamesInput } }

    /// A table: one row per kind, a column per verdict, plus the must-refuse share and the peak memory.
    public var table: String {
        var lines = ["kind         cases  must-refuse  refused  accepted  crash  hang  over-mem  silent  left  inconsistent  unnamed  peak-MiB  slowest-s"]
        for kind in FuzzKind.allCases {
            let rs = results.filter { $0.kind == kind }
            guard !rs.isEmpty else { continue }
            func n(_ v: FuzzVerdict) -> Int { rs.filter { $0.verdict == v }.count }
            let cols: [String] = [
                kind.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0), "\(rs.count)",
                "\(rs.filter { $0.expectation == .mustRefuse }.count)", "\(n(.refused))", "\(n(.accepted))", "\(n(.crash))",
                "\(n(.hang))", "\(n(.overMemory))", "\(n(.silentAccept))", "\(n(.leftBehind))", "\(n(.inconsistent))",
                "\(rs.filter { $0.verdict == .refused && !$0.refusalNamesInput }.count)",
                String(format: "%.0f", rs.map(\.peakMiB).max() ?? 0), String(format: "%.2f", rs.map(\.seconds).max() ?? 0),
            ]
            let widths = [11, 6, 12, 8, 9, 6, 5, 9, 7, 5, 13, 8, 9, 10]
            lines.append(zip(cols, widths).map { $0.count >= $1 ? $0 : String(repeating: " ", count: $1 - $0.count) + $0 }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
