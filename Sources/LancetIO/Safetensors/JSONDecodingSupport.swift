import Foundation

/// A coding key for any string key of a JSON object.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer {
    /// `decode(_:forKey:)`, but a number the type cannot hold (`4.5` or `1e30` for an `Int`) is reported as
    /// `DecodingError.dataCorrupted` at this key. Foundation's JSONDecoder otherwise reports it as
    /// "not valid JSON" with an empty coding path, losing the field.
    func decodeLocated<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        do { return try decode(type, forKey: key) } catch let error as DecodingError { throw error } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key], debugDescription: Self.unrepresentable(error, as: type), underlyingError: error))
        }
    }

    /// `decodeIfPresent(_:forKey:)` with the same error location as `decodeLocated`.
    func decodeLocatedIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        do { return try decodeIfPresent(type, forKey: key) } catch let error as DecodingError { throw error } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key], debugDescription: Self.unrepresentable(error, as: type), underlyingError: error))
        }
    }

    private static func unrepresentable<T>(_ error: any Error, as type: T.Type) -> String {
        // Foundation's internal JSONError.numberIsNotRepresentableInSwift(parsed:) carries the number's text.
        let detail = Mirror(reflecting: error).children.first.map { "\($0.value)" } ?? "\(error)"
        let what = (type is Int.Type || type is [Int].Type || type is Int?.Type) ? "an integer" : "\(type)"
        return "expected \(what), got a number it cannot hold \(detail)"
    }
}
