/// An error reading or writing a GGUF file. Every message names the file and the problem.
public struct GGUFError: Error, CustomStringConvertible, Equatable {
    /// The file concerned.
    public let path: String
    /// What is wrong, in words a user can act on.
    public let reason: String

    /// An error about `path`.
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
