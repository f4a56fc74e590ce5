/// An error turning a model file into Lancet's IR. The message names the file and the field or tensor.
public struct ModelImportError: Error, CustomStringConvertible, Equatable {
    /// The file or folder being imported.
    public let path: String
    /// What is wrong.
    public let reason: String
    /// Creates an error.
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}
