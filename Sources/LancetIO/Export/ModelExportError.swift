/// An error writing a model to a file format: the destination, the block at fault (when one is) and
/// why the model cannot be written, with what to do instead where there is an alternative.
public struct ModelExportError: Error, CustomStringConvertible, Equatable {
    /// The file or folder being written.
    public let path: String
    /// Index of the block at fault, or nil for a model-level problem.
    public let block: Int?
    /// What is wrong.
    public let reason: String

    /// Creates an error.
    public init(_ path: String, block: Int? = nil, _ reason: String) {
        self.path = path
        self.block = block
        self.reason = reason
    }

    public var description: String {
        "\(path): " + (block.map { "block \($0): " } ?? "") + reason
    }
}
