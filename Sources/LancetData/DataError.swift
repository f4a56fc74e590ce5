/// An error reading calibration or evaluation data. The message names the file and the problem.
public enum DataError: Error, CustomStringConvertible, Equatable {
    /// The file cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is compressed wrongly or is not in the expected format.
    case corrupt(path: String, reason: String)
    /// A JSON-lines file has a line that is not an object with a string `text` field.
    case badLine(path: String, line: Int, reason: String)
    /// The file holds no text, or too little for what was asked.
    case tooLittleText(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(p, r): "\(p): cannot read: \(r)"
        case let .corrupt(p, r): "\(p): \(r)"
        case let .badLine(p, l, r): "\(p):\(l): \(r)"
        case let .tooLittleText(p, r): "\(p): \(r)"
        }
    }
}
