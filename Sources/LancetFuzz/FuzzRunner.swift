import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How one case ended, with what a person needs to reproduce and read it.
public struct FuzzResult: Sendable {
    /// The case's label (kind, number, expectation, mutations).
    public var label: String
    /// The case's kind.
    public var kind: FuzzKind
    /// The case's number within its kind.
    public var index: Int
    /// Whether it was invalid by construction.
    public var expectation: FuzzExpectation
    /// The verdict.
    public var verdict: FuzzVerdict
    /// For failures and refusals: the command and the first lines of what it printed.
    public var detail: String
    /// Whether a refusal's message named the input file (or folder).
    public var refusalNamesInput: Bool
    /// Peak resident memory of the largest command, in MiB.
    public var peakMiB: Double
    /// Wall time of the slowest command, in seconds.
    public var seconds: Double
}

/// Runs a case the way a user would: writes its files into a fresh folder and runs the real `lancet`
/// executable on them, one process per command, under a time limit and an address-space limit, then judges
/// the exit status, what was printed, the peak memory and what was left in the folder.
public struct FuzzRunner: Sendable {
    /// The `lancet` executable.
    public var lancet: String
    /// Where case folders are made (each removed after its case).
    public var root: String
    /// Seconds a command may take before it counts as a hang.
    public var timeout: Double
    /// The address-space limit of each command (an allocation beyond it fails, and Lancet must not crash on it), MiB.
    public var addressSpaceMiB: Int
    /// Peak resident memory above which a command counts as an unbounded allocation, MiB.
    public var memoryBoundMiB: Double

    /// A runner with the suite's defaults.
    public init(lancet: String, root: String, timeout: Double = 30, addressSpaceMiB: Int = 8192, memoryBoundMiB: Double = 1024) {
        self.lancet = lancet
        self.root = root
        self.timeout = timeout
        self.addressSpaceMiB = addressSpaceMiB
        self.memoryBoundMiB = memoryBoundMiB
    }

    /// Runs one case and removes its folder.
    public func run(_ c: FuzzCase) -> FuzzResult {
        let dir = root + "/\(c.kind.rawValue)-\(c.index)"
        let logs = root + "/logs-\(c.kind.rawValue)-\(c.index)"
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        try? fm.removeItem(atPath: logs)
        defer {
            try? fm.removeItem(atPath: dir)
            try? fm.removeItem(atPath: logs)
        }
        var result = FuzzResult(label: c.label, kind: c.kind, index: c.index, expectation: c.expectation, verdict: .refused, detail: "",
                                refusalNamesInput: true, peakMiB: 0, seconds: 0)
        do {
            try fm.createDirectory(atPath: logs, withIntermediateDirectories: true)
            for (name, bytes) in c.files {
                let path = dir + "/" + name
                try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard fm.createFile(atPath: path, contents: Data(bytes)) else { throw CocoaError(.fileWriteUnknown) }
            }
        } catch {
            result.verdict = .inconsistent
            result.detail = "fuzzer could not write the case: \(error)"
            return result
        }
        let before = FolderSnapshot(dir)
        var exits: [Int32] = []
        for (k, args) in c.commands.enumerated() {
            let run = spawn(args, in: dir, stdout: logs + "/out\(k)", stderr: logs + "/err\(k)")
            result.peakMiB = max(result.peakMiB, run.peakMiB)
            result.seconds = max(result.seconds, run.seconds)
            let printed = (try? String(contentsOfFile: logs + "/err\(k)", encoding: .utf8)) ?? ""
            let shown = "lancet \(args.joined(separator: " ")): " + printed.split(separator: "\n").prefix(3).joined(separator: " | ")
            if run.timedOut { return fail(result, .hang, "\(shown) [killed after \(timeout) s]") }
            if let signal = run.signal { return fail(result, .crash, "\(shown) [signal \(signal)]") }
            if printed.contains("Fatal error") || printed.contains("Stack dump") { return fail(result, .crash, shown) }
            if run.peakMiB > memoryBoundMiB { return fail(result, .overMemory, "\(shown) [peak \(Int(run.peakMiB)) MiB]") }
            guard [0, 1, 64].contains(run.exitCode) else { return fail(result, .inconsistent, "\(shown) [exit \(run.exitCode)]") }
            if run.exitCode != 0 {
                guard !printed.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    return fail(result, .inconsistent, "\(shown) [exit \(run.exitCode) with no message]")
                }
                if result.detail.isEmpty { result.detail = shown }
                let inputs = c.files.keys.map { String($0.split(separator: "/").first!) }
                if !inputs.contains(where: { printed.contains($0) }) && !printed.contains(dir) { result.refusalNamesInput = false }
            }
            exits.append(run.exitCode)
        }
        let after = FolderSnapshot(dir)
        if after != before { return fail(result, .leftBehind, before.difference(to: after)) }
        if Set(exits.map { $0 == 0 }).count > 1 {
            return fail(result, .inconsistent, "exit codes \(exits) for \(c.commands.map { $0.first ?? "" }): \(result.detail)")
        }
        if exits.allSatisfy({ $0 == 0 }) {
            result.verdict = c.expectation == .mustRefuse ? .silentAccept : .accepted
        }
        return result
    }

    private func fail(_ r: FuzzResult, _ verdict: FuzzVerdict, _ detail: String) -> FuzzResult {
        var r = r
        r.verdict = verdict
        r.detail = detail
        return r
    }

    /// What one process did.
    struct ProcessRun {
        var exitCode: Int32 = 0
        var signal: Int32?
        var timedOut = false
        var peakMiB: Double = 0
        var seconds: Double = 0
    }

    /// Runs `lancet args` in `dir` through `/bin/sh` (for the working folder, the address-space limit and the
    /// redirections), polls its peak resident memory while it runs, and kills it at the time limit.
    ///
    /// The peak is the `VmHWM` of the process once it has left this executable, not `wait4`'s `ru_maxrss`: Linux carries
    /// the high-water mark of the address space a process leaves at `exec` into `ru_maxrss`, and a spawned
    /// child starts in the spawner's address space, so `ru_maxrss` would report the test process's own peak.
    func spawn(_ args: [String], in dir: String, stdout: String, stderr: String) -> ProcessRun {
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let script = "cd \(quoted(dir)) && ulimit -v \(addressSpaceMiB * 1024) && exec \(quoted(lancet)) "
            + args.map(quoted).joined(separator: " ") + " </dev/null >\(quoted(stdout)) 2>\(quoted(stderr))"
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", script].map { (s: String) in strdup(s) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = Date()
        var run = ProcessRun()
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else {
            run.exitCode = 127
            return run
        }
        var status: Int32 = 0
        while true {
            if let peak = ResidentPeak.of(pid) { run.peakMiB = max(run.peakMiB, peak) }
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if Date().timeIntervalSince(start) > timeout {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                run.timedOut = true
                break
            }
            usleep(2000)
        }
        run.seconds = Date().timeIntervalSince(start)
        let signalled = status & 0x7F
        if !run.timedOut {
            if signalled != 0 && signalled != 0x7F { run.signal = signalled } else { run.exitCode = (status >> 8) & 0xFF }
        }
        return run
    }
}

/// The names, sizes and modification times of the files under a folder, and its subfolders' names (links not followed).
struct FolderSnapshot: Equatable {
    var entries: [String: String]

    init(_ dir: String) {
        entries = [:]
        let fm = FileManager.default
        guard let names = fm.subpaths(atPath: dir) else { return }
        for name in names {
            let attributes = (try? fm.attributesOfItem(atPath: dir + "/" + name)) ?? [:]
            // A folder counts by its presence: creating and removing a probe file in it (as `validate` does to
            // test that the output folder is writable) changes its time but leaves nothing behind.
            if attributes[.type] as? FileAttributeType == .typeDirectory {
                entries[name] = "folder"
                continue
            }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
            let date = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            entries[name] = "\(size)@\(date)"
        }
    }

    /// What changed, in words.
    func difference(to other: FolderSnapshot) -> String {
        let added = other.entries.keys.filter { entries[$0] == nil }.sorted()
        let removed = entries.keys.filter { other.entries[$0] == nil }.sorted()
        let changed = entries.keys.filter { other.entries[$0] != nil && other.entries[$0] != entries[$0] }.sorted()
        return "added \(added), removed \(removed), changed \(changed)"
    }
}
