import Foundation
import Lancet
import XCTest

/// One writer per output: the lock file beside the output, its holders and its stale leftovers.
final class OutputLockTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lancet-lock-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testASecondLockOnTheSameOutputIsRefusedWithTheHoldersPID() throws {
        let output = folder + "/out.gguf"
        let first = try OutputLock.acquire(output: output)
        XCTAssertEqual(try String(contentsOfFile: output + ".lock", encoding: .utf8), "\(getpid())\n")
        XCTAssertThrowsError(try OutputLock.acquire(output: output)) { e in
            guard case let OutputLockError.busy(busyOutput, pid) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(busyOutput, output)
            XCTAssertEqual(pid, getpid())
            XCTAssertTrue("\(e)".contains("output \(output) is being written by process \(getpid())"), "\(e)")
        }
        first.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".lock"), "release removes the lock file")
        let second = try OutputLock.acquire(output: output)
        XCTAssertTrue(second.isHeld)
        second.release()
        second.release()
        XCTAssertFalse(second.isHeld)
    }

    func testALockHeldByAnotherProcessIsRefusedUntilThatProcessIsKilled() throws {
        let output = folder + "/model-out"
        let lockFile = OutputLock.lockPath(for: output + "/")
        XCTAssertEqual(lockFile, output + ".lock")
        // A shell that flocks the lock file, writes its PID in it and then becomes `sleep` (same PID, lock kept).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/bin/sh")
        holder.arguments = ["-c", "exec 9<>\"$0\"; flock -x 9 || exit 3; echo $$ > \"$0\"; exec sleep 60", lockFile]
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(10)
        while (try? String(contentsOfFile: lockFile, encoding: .utf8)) != "\(holder.processIdentifier)\n" {
            guard Date() < deadline, holder.isRunning else { throw XCTSkip("could not start a lock holder (is flock(1) installed?)") }
            usleep(10_000)
        }
        let started = Date()
        XCTAssertThrowsError(try OutputLock.acquire(output: output)) { e in
            XCTAssertTrue("\(e)".contains("is being written by process \(holder.processIdentifier)"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1, "a busy output is refused at once")

        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let log = Lines()
        let lock = try OutputLock.acquire(output: output, log: { log.append($0) })
        defer { lock.release() }
        XCTAssertEqual(try String(contentsOfFile: lockFile, encoding: .utf8), "\(getpid())\n")
        XCTAssertTrue(log.text.contains("taking over the stale lock \(lockFile) of process \(holder.processIdentifier) (no longer running)"), log.text)
    }

    func testAStaleLockFileOfADeadProcessIsTakenOver() throws {
        let output = folder + "/out.gguf"
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        try Data("\(dead.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: output + ".lock"))
        let log = Lines()
        let lock = try OutputLock.acquire(output: output, log: { log.append($0) })
        XCTAssertEqual(try String(contentsOfFile: output + ".lock", encoding: .utf8), "\(getpid())\n")
        XCTAssertTrue(log.text.contains("of process \(dead.processIdentifier)"), log.text)
        XCTAssertThrowsError(try OutputLock.acquire(output: output), "the taken-over lock is held")
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".lock"))
    }

    func testReleaseRemovesTheFoldersTheLockMadeWhenTheyStayEmpty() throws {
        let output = folder + "/a/b/out.gguf"
        let lock = try OutputLock.acquire(output: output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/a/b/out.gguf.lock"))
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/a"), "nothing left behind")

        let kept = try OutputLock.acquire(output: output)
        try Data("model".utf8).write(to: URL(fileURLWithPath: output))
        kept.release()
        XCTAssertTrue(FileManager.default.fileExists(atPath: output), "a folder holding the output stays")
    }

    func testALinkAtTheLockFileIsRefusedAndItsTargetLeftAlone() throws {
        let output = folder + "/out.gguf"
        let target = folder + "/precious.txt"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: output + ".lock", withDestinationPath: target)
        XCTAssertThrowsError(try OutputLock.acquire(output: output)) { e in
            XCTAssertTrue("\(e)".contains("\(output).lock: is a symbolic link"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep me")
    }

    func testASurgeryRunRefusesAnOutputAnotherRunIsWritingAndWritesItAfterwards() throws {
        let modelPath = folder + "/tiny.gguf"
        try TinyLlama.make(seed: 3).save(to: modelPath)
        let output = folder + "/out.gguf"
        // The first run stops after its first block until the second has tried.
        let firstMidRun = DispatchSemaphore(value: 0), secondTried = DispatchSemaphore(value: 0)
        var options = RunOptions()
        let once = Counter()
        options.blockFinished = { _, _, _ in
            once.increment()
            if once.value == 1 {
                firstMidRun.signal()
                secondTried.wait()
            }
        }
                let firstResult = Box()
        let firstOptions = options
        let thread = Thread { firstResult.set(Result { try Self.surgery(model: modelPath, output: output).execute(options: firstOptions, resume: false) }) }
        thread.start()
        XCTAssertEqual(firstMidRun.wait(timeout: .now() + 60), .success)
        let started = Date()
        // A missing model: the second run must be refused by the lock before it tries to load anything.
        XCTAssertThrowsError(try Self.surgery(model: folder + "/no-such-model.gguf", output: output).execute(options: RunOptions(), resume: false)) { e in
            XCTAssertTrue("\(e)".contains("output \(output) is being written by process \(getpid())"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        secondTried.signal()
        let deadline = Date().addingTimeInterval(60)
        while firstResult.value == nil, Date() < deadline { usleep(10_000) }
        let outcome = try XCTUnwrap(firstResult.value).get()
        XCTAssertEqual(outcome.output, output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".lock"), "the finished run released its lock")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".checkpoint"))
        var again = try Self.surgery(model: modelPath, output: output)
        again.force = true
        XCTAssertNoThrow(try again.execute(options: RunOptions(), resume: false))
    }

    /// A calibration-free run of magnitude pruning from `model` to `output`, without measurements.
    static func surgery(model: String, output: String) throws -> SurgeryRun {
        let recipe = Recipe(model: model, stages: [Stage(name: "prune", passes: try PipelineText.parse("magnitude(sparsity=0.5)"))],
                            output: output, text: "magnitude(sparsity=0.5)", source: "<pipeline>")
        var run = SurgeryRun(recipe: recipe, registry: try BuiltinPasses.registry())
        run.evaluate = false
        run.speedTokens = 0
        return run
    }
}

/// Lines collected from a log callback, thread-safe.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
}

/// A run's result handed from a thread, thread-safe.
final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<SurgeryRun.Outcome, Error>?
    var value: Result<SurgeryRun.Outcome, Error>? { lock.lock(); defer { lock.unlock() }; return result }
    func set(_ r: Result<SurgeryRun.Outcome, Error>) { lock.lock(); result = r; lock.unlock() }
}
