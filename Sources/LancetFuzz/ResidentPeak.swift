import Foundation

/// The peak resident memory of a spawned process, read from `/proc` while it runs.
enum ResidentPeak {
    /// `VmHWM` of process `pid` in MiB, or nil while it still runs the spawner's own executable (between
    /// spawn and `exec` a child may share its parent's address space) and once it is a zombie.
    static func of(_ pid: pid_t) -> Double? {
        guard let exe = executable(of: pid), exe != spawner else { return nil }
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "")
        else { return nil }
        return kib / 1024
    }

    /// This process's executable.
    private static let spawner = executable(of: getpid())

    /// Where `/proc/<pid>/exe` points.
    private static func executable(of pid: pid_t) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }
}
