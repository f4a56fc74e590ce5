import ArgumentParser
import Foundation
import LancetFuzz

/// `lancet-fuzz`: seeded hostile inputs (mutated GGUF files, safetensors headers, `config.json`,
/// `tokenizer.json` and recipes) run through the real `lancet` executable; every case must end in a clean
/// refusal or a valid model. Exits 1 when any case crashed, hung, went over the memory bound, left a file,
/// answered inconsistently, or accepted an input that is invalid by construction.
@main
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lancet-fuzz",
        abstract: "Run seeded hostile inputs through lancet: every case must end in a clean error or a valid model.")

    @Option(help: "Cases per kind.")
    var count = 200

    @Option(help: "Cases in all, split evenly over the kinds (overrides --count).")
    var cases: Int?

    @Option(help: "The campaign seed (a case is reproduced by the same seed, kind and number).")
    var seed: UInt64 = 1

    @Option(help: "The first case number of each kind.")
    var from = 0

    @Option(help: "Kinds to run (repeatable): \(FuzzKind.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.")
    var kind: [String] = []

    @Option(help: "Concurrent lancet processes.")
    var jobs = 2

    @Option(help: "Seconds a command may run before it counts as a hang.")
    var timeout: Double = 30

    @Option(help: "Peak resident memory (MiB) above which a command counts as an unbounded allocation.")
    var memoryBound: Double = 1024

    @Option(help: "The lancet executable (default: the one beside lancet-fuzz).")
    var lancet: String?

    @Option(help: "Where case folders are made (default: a new folder in the temporary directory).")
    var workDirectory: String?

    @Option(help: "Write the files of every failing case here, one folder per case, to reproduce it by hand.")
    var keepFailures: String?

    @Flag(help: "Print every case's verdict.")
    var verbose = false

    func validate() throws {
        guard count >= 0, (cases ?? 0) >= 0, from >= 0, jobs >= 1, timeout > 0 else { throw ValidationError("--count, --from, --jobs and --timeout must be positive") }
        for k in kind where FuzzKind(rawValue: k) == nil {
            throw ValidationError("--kind \(k): unknown kind (known: \(FuzzKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    func run() throws {
        let executable = lancet.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("lancet").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("no lancet executable at \(executable) (build it, or pass --lancet PATH)")
        }
        let root = workDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("lancet-fuzz-\(getpid())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { if workDirectory == nil { try? FileManager.default.removeItem(atPath: root) } }

        let campaign = FuzzCampaign(fixtures: try FuzzFixtures.make(scratch: root),
                                    runner: FuzzRunner(lancet: executable, root: root, timeout: timeout, memoryBoundMiB: memoryBound),
                                    seed: seed)
        let kinds = kind.isEmpty ? FuzzKind.allCases : kind.compactMap(FuzzKind.init(rawValue:))
        let count = cases.map { ($0 + kinds.count - 1) / kinds.count } ?? self.count
        let regressions = FuzzRegressions.cases(campaign.fixtures).filter { kinds.contains($0.kind) }
        let specs = regressions.indices.map { (kind: FuzzKind?.none, index: $0) } + kinds.flatMap { k in (from..<(from + count)).map { (kind: Optional(k), index: $0) } }
        @Sendable func make(_ spec: (kind: FuzzKind?, index: Int)) -> FuzzCase {
            spec.kind.map { campaign.generate($0, index: spec.index) } ?? regressions[spec.index]
        }
        print("lancet-fuzz: seed \(seed), \(count) cases per kind from #\(from) (+\(regressions.count) regression cases), \(jobs) jobs, lancet \(executable)")
        let start = Date()
        let done = Progress(total: specs.count, verbose: verbose)
        let results = campaign.run(count: specs.count, jobs: jobs, progress: { done.record($0) }) { make(specs[$0]) }
        let summary = FuzzSummary(results)
        print(summary.table)
        for f in summary.failures.prefix(200) { print("FAIL \(f.verdict.rawValue): \(f.label)\n     \(f.detail)") }
        if let keep = keepFailures { try keepCases(summary.failures.map { f in f.label.contains("regression:") ? regressions.first { $0.label == f.label }! : campaign.generate(f.kind, index: f.index) }, results: summary.failures, in: keep) }
        let failures = summary.failures.count
        print(String(format: "lancet-fuzz: %d cases in %.0f s, %d failures, %d refusals not naming their input", results.count,
                     Date().timeIntervalSince(start), failures, summary.unnamedRefusals.count))
        if failures > 0 { throw ExitCode(1) }
    }

    /// Writes the failing cases' files for reproduction.
    func keepCases(_ cases: [FuzzCase], results: [FuzzResult], in dir: String) throws {
        for (c, f) in zip(cases, results) {
            let folder = dir + "/\(c.kind.rawValue)-\(c.index)"
            for (name, bytes) in c.files {
                let path = folder + "/" + name
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: path, contents: Data(bytes))
            }
            try (f.label + "\n" + f.detail + "\n").write(toFile: folder + "/CASE.txt", atomically: true, encoding: .utf8)
        }
    }
}

/// Prints a line every 5% of the cases (and every case with `--verbose`).
final class Progress: @unchecked Sendable {
    private let total: Int
    private let verbose: Bool
    private var done = 0
    private let lock = NSLock()

    init(total: Int, verbose: Bool) {
        self.total = total
        self.verbose = verbose
    }

    func record(_ r: FuzzResult) {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        if verbose { print("[\(done)/\(total)] \(r.verdict.rawValue) \(r.label)") } else if done % max(1, total / 20) == 0 {
            print("[\(done)/\(total)]")
        }
        fflush(stdout)
    }
}
