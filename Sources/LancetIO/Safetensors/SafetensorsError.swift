/// An error reading or writing a safetensors file or checkpoint folder.
/// Every message names the file, the tensor when one is concerned, and the problem.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// The file (or checkpoint folder) concerned.
    public let path: String
    /// The tensor concerned, if the problem is about one tensor.
    public let tensor: String?
    /// What is wrong, in words a user can act on.
    public let reason: String

    /// An error about `path`, and about `tensor` if given.
    public init(_ path: String, tensor: String? = nil, _ reason: String) {
        self.path = path
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        if let tensor { return "\(path): tensor '\(tensor)': \(reason)" }
        return "\(path): \(reason)"
    }
}
