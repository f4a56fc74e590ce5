import Foundation
import XCTest
@testable import LancetFuzz

/// The fuzz suite at the size `make test` affords: the regression cases of issue 23 and a seeded set of
/// generated cases of every kind, run through the real `lancet` executable built beside this test bundle.
final class FuzzSuiteTests: XCTestCase {
    /// Cases per kind in `make test` (`make fuzz N=…` runs more).
    static let casesPerKind = 24

    static var lancetExecutable: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        return beside.appendingPathComponent("lancet").path
    }

    static func scratch(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lancet-fuzz-tests-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func testEveryHostileInputEndsInACleanErrorOrAValidModel() throws {
        let lancet = Self.lancetExecutable
        guard FileManager.default.isExecutableFile(atPath: lancet) else {
            return XCTFail("no lancet executable beside the test bundle at \(lancet); build all products first (make test does)")
        }
        let root = try Self.scratch("suite")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let campaign = FuzzCampaign(fixtures: try FuzzFixtures.make(scratch: root), runner: FuzzRunner(lancet: lancet, root: root), seed: 1)
        var cases = FuzzRegressions.cases(campaign.fixtures)
        for kind in FuzzKind.allCases { cases += (0..<Self.casesPerKind).map { campaign.generate(kind, index: $0) } }
        let summary = FuzzSummary(campaign.run(cases, jobs: 2))
        print(summary.table)
        XCTAssertEqual(summary.results.count, cases.count)
        for f in summary.failures { XCTFail("\(f.verdict.rawValue): \(f.label)\n  \(f.detail)") }
        let refusedRegressions = summary.results.filter { $0.label.contains("regression:") && $0.verdict == .refused }
        XCTAssertEqual(refusedRegressions.count, FuzzRegressions.cases(campaign.fixtures).count, "every regression case is refused")
        for r in summary.unnamedRefusals { XCTFail("refusal does not name its input: \(r.label)\n  \(r.detail)") }
    }

    func testCasesAreReproducibleFromTheSeed() throws {
        let root = try Self.scratch("seed")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fixtures = try FuzzFixtures.make(scratch: root)
        let runner = FuzzRunner(lancet: "/bin/false", root: root)
        let a = FuzzCampaign(fixtures: fixtures, runner: runner, seed: 7), b = FuzzCampaign(fixtures: fixtures, runner: runner, seed: 7)
        let c = FuzzCampaign(fixtures: fixtures, runner: runner, seed: 8)
        for kind in FuzzKind.allCases {
            var differs = 0
            for i in 0..<20 {
                let x = a.generate(kind, index: i), y = b.generate(kind, index: i), z = c.generate(kind, index: i)
                XCTAssertEqual(x.files, y.files, "\(kind) #\(i)")
                XCTAssertEqual(x.mutations, y.mutations)
                if x.files != z.files { differs += 1 }
            }
            XCTAssertGreaterThan(differs, 10, "another seed gives other \(kind) cases")
        }
    }

    func testUnmutatedFixturesLoadAndValidate() throws {
        let lancet = Self.lancetExecutable
        guard FileManager.default.isExecutableFile(atPath: lancet) else { return XCTFail("no lancet executable at \(lancet)") }
        let root = try Self.scratch("fixtures")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let f = try FuzzFixtures.make(scratch: root)
        let runner = FuzzRunner(lancet: lancet, root: root)
        var hf = f.huggingFace.mapKeys { "model/" + $0 }
        hf["text.txt"] = f.text
        let cases = [
            FuzzCase(kind: .gguf, index: 0, mutations: ["none"], expectation: .either, files: ["model.gguf": f.ggufF32, "text.txt": f.text],
                     commands: FuzzFixtures.loadCommands("model.gguf")),
            FuzzCase(kind: .gguf, index: 1, mutations: ["none"], expectation: .either, files: ["model.gguf": f.ggufQ8, "text.txt": f.text],
                     commands: FuzzFixtures.loadCommands("model.gguf")),
            FuzzCase(kind: .safetensors, index: 0, mutations: ["none"], expectation: .either, files: hf, commands: FuzzFixtures.loadCommands("model")),
            FuzzCase(kind: .archive, index: 0, mutations: ["none"], expectation: .either, files: ["model.safetensors": f.archive, "text.txt": f.text],
                     commands: FuzzFixtures.loadCommands("model.safetensors")),
            FuzzCase(kind: .recipe, index: 0, mutations: ["none"], expectation: .either,
                     files: ["recipe.yaml": Array(FuzzFixtures.baseRecipe.utf8), "model.gguf": f.ggufF32, "text.txt": f.text, "eval.txt": f.text, "out/.keep": []],
                     commands: [["validate", "recipe.yaml"]]),
        ]
        for c in cases {
            let r = runner.run(c)
            XCTAssertEqual(r.verdict, .accepted, "\(c.label): \(r.detail)")
        }
    }

    /// The runner's judgement, on stand-in executables that misbehave in each way.
    func testRunnerJudgesCrashesHangsLeftoversAndSilentAccepts() throws {
        let root = try Self.scratch("judge")
        defer { try? FileManager.default.removeItem(atPath: root) }
        func script(_ name: String, _ body: String) throws -> String {
            let path = root + "/" + name
            try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            return path
        }
        func verdict(_ body: String, _ expectation: FuzzExpectation = .either, timeout: Double = 20) throws -> FuzzVerdict {
            let runner = FuzzRunner(lancet: try script("stand-in-\(abs(body.hashValue))", body), root: root, timeout: timeout)
            return runner.run(FuzzCase(kind: .gguf, index: 0, mutations: [], expectation: expectation, files: ["in.bin": [1, 2, 3]],
                                       commands: [["inspect", "in.bin"]])).verdict
        }
        XCTAssertEqual(try verdict("kill -SEGV $$"), .crash)
        XCTAssertEqual(try verdict("echo 'Fatal error: boom' >&2; exit 1"), .crash)
        XCTAssertEqual(try verdict("sleep 5", timeout: 0.5), .hang)
        XCTAssertEqual(try verdict("touch leftover; echo in.bin: bad >&2; exit 1"), .leftBehind)
        XCTAssertEqual(try verdict("exit 0", .mustRefuse), .silentAccept)
        XCTAssertEqual(try verdict("exit 0"), .accepted)
        XCTAssertEqual(try verdict("echo 'in.bin: bad' >&2; exit 64"), .refused)
        XCTAssertEqual(try verdict("exit 64"), .inconsistent, "a refusal without a message")
        XCTAssertEqual(try verdict("echo x >&2; exit 3"), .inconsistent, "an exit code outside 0/1/64")
    }

    /// A command's peak memory is its own: a spawner that holds more than the bound does not make a small
    /// command over-memory (Linux's `ru_maxrss` would say so), and a command that grows beyond it is.
    func testPeakMemoryIsTheCommandsOwnNotTheSpawners() throws {
        let root = try Self.scratch("peak")
        defer { try? FileManager.default.removeItem(atPath: root) }
        func run(_ body: String, boundMiB: Double) throws -> FuzzResult {
            let path = root + "/stand-in-\(abs(body.hashValue))"
            try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            let runner = FuzzRunner(lancet: path, root: root, memoryBoundMiB: boundMiB)
            return runner.run(FuzzCase(kind: .gguf, index: 0, mutations: [], expectation: .either, files: ["in.bin": [1]],
                                       commands: [["inspect", "in.bin"]]))
        }
        let held = 160 << 20
        let ballast = UnsafeMutableRawPointer.allocate(byteCount: held, alignment: 4096)
        defer { ballast.deallocate() }
        for offset in stride(from: 0, to: held, by: 4096) { ballast.storeBytes(of: UInt8(1), toByteOffset: offset, as: UInt8.self) }
        let small = try run("exit 0", boundMiB: 64)
        XCTAssertEqual(small.verdict, .accepted, "peak \(small.peakMiB) MiB while the spawner holds 160 MiB")
        XCTAssertLessThan(small.peakMiB, 64)
        let grows = try run("x=$(head -c 100000000 /dev/zero | tr '\\0' a); exit 0", boundMiB: 64)
        XCTAssertEqual(grows.verdict, .overMemory, "a command holding 100 MB: peak \(grows.peakMiB) MiB")
    }
}
