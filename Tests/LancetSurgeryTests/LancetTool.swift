import Foundation
import XCTest

/// The built `lancet` of the tests' configuration, run as a user runs it.
enum LancetTool {
    /// Runs `lancet arguments…` to the end; returns its exit status, standard output and standard error.
    /// Throws `XCTSkip` when the tool is not built.
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let tool = CommandLineOutputTests.tool
        guard FileManager.default.isExecutableFile(atPath: tool) else { throw XCTSkip("\(tool) is not built") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let (output, errors) = (Pipe(), Pipe())
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Both pipes drained at once: a child blocked on a full standard error never closes its standard output.
        let errorText = ErrorText()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorText.data = errors.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorText.data, as: UTF8.self))
    }

    /// Standard error, filled by the reading queue before the semaphore is signalled.
    private final class ErrorText: @unchecked Sendable { var data = Data() }
}
