import Foundation
import Lancet
import XCTest

/// The real reference model, loaded once for all tests that need it (`make test` fetches it first).
enum RealModel {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let path = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    private static let loaded: Result<Model, Error> = Result { try ModelLoader.load(path) }

    /// The model, or a test failure explaining how to fetch it.
    static func model() throws -> Model {
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("the reference model is missing at \(path); run `make test` (it runs scripts/fetch-model)")
        }
        return try loaded.get()
    }

    /// Whitespace-separated integers of a fixture file (gunzipped when it ends in .gz).
    static func numbers(_ name: String) throws -> [Double] {
        let url = fixtures.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        let bytes: [UInt8] = name.hasSuffix(".gz") ? try data.withUnsafeBytes { try Gzip.decompress($0, path: url.path) } : Array(data)
        return String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).map { Double($0)! }
    }
}
