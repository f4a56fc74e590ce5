import Foundation

/// A one-line progress bar with ETA on a terminal (standard error); plain log lines otherwise; nothing with
/// `--quiet` (`Console`).
///
/// One bar serves the phases of a run in turn (the block sweep, then each evaluation text): a count that
/// does not advance or a new total starts a new phase, whose elapsed time and ETA are its own.
final class ProgressBar {
    private let label: String
    private var start = Date()
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastLog = Date.distantPast
    private var phase: (done: Int, total: Int, at: Date)?

    init(_ label: String) { self.label = label }

    /// Reports `done` of `total` units, with an optional note (e.g. the current pass).
    func update(_ done: Int, of total: Int, note: String = "") {
        if Console.quiet { return }
        // The new phase began when the previous one reported its last unit.
        if let phase, done <= phase.done || total != phase.total { start = phase.at }
        phase = (done, total, Date())
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let text = "\(label) \(done)/\(total)\(note.isEmpty ? "" : " " + note)  elapsed \(Self.clock(elapsed))  ETA \(Self.clock(eta))"
        if interactive {
            let width = 24, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K[\(bar)] \(text)".utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if done == total || Date().timeIntervalSince(lastLog) > 10 {
            lastLog = Date()
            FileHandle.standardError.write(Data("\(text)\n".utf8))
        }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
