import Foundation

/// Finds a key that appears twice in one JSON object, at any depth.
///
/// Foundation's JSON parsers keep one of two equal keys and drop the other without a word, so a header
/// that describes a tensor twice (or a config that states a size twice) would load whichever copy the
/// parser kept. This scan runs before decoding: one pass over the bytes, an explicit stack (no recursion,
/// so nesting depth costs heap, not call stack), and keys compared after unescaping (`"a"` and `"\u0061"`
/// are the same key). It does not validate the JSON; malformed text is left for the decoder to report.
enum JSONDuplicateKeys {
    /// A key that appears twice in one object, with the JSON path of that object (`""` for the top level,
    /// `model.vocab` below it), or nil when every object's keys are distinct (or the text is not JSON).
    static func first(in json: Data) -> (key: String, objectPath: String)? {
        json.withUnsafeBytes { raw in first(in: raw.bindMemory(to: UInt8.self)) }
    }

    /// One open container: an object's keys so far (nil for an array) and its name in the path.
    private struct Level {
        var keys: Set<String>?
        var name: String
        var nextIsKey: Bool
    }

    private static func first(in b: UnsafeBufferPointer<UInt8>) -> (key: String, objectPath: String)? {
        var stack: [Level] = []
        var lastKey: String? = nil  // the key whose value comes next, in the innermost object
        var i = 0
        let n = b.count
        func path() -> String {
            stack.dropFirst().map(\.name).reduce("") { $0.isEmpty || $1.hasPrefix("[") ? $0 + $1 : $0 + "." + $1 }
        }
        while i < n {
            let c = b[i]
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let name = lastKey ?? (stack.last?.keys == nil && !stack.isEmpty ? "[]" : "")
                stack.append(Level(keys: c == UInt8(ascii: "{") ? [] : nil, name: name, nextIsKey: c == UInt8(ascii: "{")))
                lastKey = nil
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                lastKey = nil
                i += 1
            case UInt8(ascii: ","):
                if let top = stack.last, top.keys != nil { stack[stack.count - 1].nextIsKey = true }
                lastKey = nil
                i += 1
            case UInt8(ascii: "\""):
                guard let end = stringEnd(b, from: i) else { return nil }
                if let top = stack.last, top.keys != nil, top.nextIsKey {
                    guard let key = decodeString(UnsafeBufferPointer(rebasing: b[i..<end])) else { return nil }
                    if top.keys!.contains(key) { return (key, path()) }
                    stack[stack.count - 1].keys!.insert(key)
                    stack[stack.count - 1].nextIsKey = false
                    lastKey = key
                }
                i = end
            default:
                i += 1
            }
        }
        return nil
    }

    /// The index just past the closing quote of the string that opens at `start`, or nil if it never closes.
    private static func stringEnd(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var i = start + 1
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""): return i + 1
            default: i += 1
            }
        }
        return nil
    }

    /// A quoted JSON string token's value; tokens without escapes are decoded directly.
    private static func decodeString(_ token: UnsafeBufferPointer<UInt8>) -> String? {
        let body = UnsafeBufferPointer(rebasing: token[(token.startIndex + 1)..<(token.endIndex - 1)])
        if !body.contains(UInt8(ascii: "\\")) { return String(decoding: body, as: UTF8.self) }
        return (try? JSONSerialization.jsonObject(with: Data(token), options: .fragmentsAllowed)) as? String
    }
}
