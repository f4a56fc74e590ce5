import Foundation
import LancetData
import LancetIO
import LancetTensor

/// The provenance record of one run, stored in the output file's metadata (`lancet.provenance`, one JSON
/// string per run, oldest first): the recipe text, the input model's SHA-256, the calibration file's SHA-256
/// with its sampling settings, and every pass report. Wall times are left out so that identical runs give
/// identical files; they go to the run's report instead.
public struct ProvenanceRecord: Codable, Sendable {
    /// `lancet`.
    public var tool = "lancet"
    /// Lancet's version.
    public var version = LancetVersion.current
    /// The recipe as written (YAML, or the textual pipeline).
    public var recipe: String
    /// SHA-256 of the input model file (or of its config and weight files for a folder).
    public var inputSHA256: String
    /// The calibration data, if any.
    public var calibration: Calibration?
    /// Every pass report, without wall times.
    public var passes: [PassReport]

    /// Calibration provenance.
    public struct Calibration: Codable, Sendable {
        /// The file as given.
        public var file: String
        /// Its SHA-256.
        public var sha256: String
        /// Windows, tokens per window, seed.
        public var samples: Int, context: Int, seed: UInt64
        /// The sampler when it is not Lancet's own (absent in records of the default, as before it existed).
        public var sampler: CalibrationSampler?
    }

    enum CodingKeys: String, CodingKey {
        case tool, version, recipe, calibration, passes
        case inputSHA256 = "input_sha256"
    }

    /// A record of a finished run.
    public init(recipe: String, inputSHA256: String, calibration: Calibration?, passes: [PassReport]) {
        self.recipe = recipe
        self.inputSHA256 = inputSHA256
        self.calibration = calibration
        self.passes = passes.map { r in
            var r = r
            r.cutSeconds = nil
            r.fitSeconds = nil
            r.forwardSeconds = nil
            // A pass's own wall times (metrics named `…seconds…`) go to the run's report only.
            r.metrics = r.metrics.filter { !$0.key.contains("seconds") }
            return r
        }
    }

    /// The record as one line of JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// SHA-256 of a model path: the file, or a folder's `config.json` and weight files in name order.
    public static func hash(modelAt path: String) throws -> String {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let files = isDirectory.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).filter { $0 == "config.json" || $0.hasSuffix(".safetensors") }.sorted().map { path + "/" + $0 }
            : [path]
        var h = SHA256()
        for f in files {
            let file = try MappedFile(path: f)
            withExtendedLifetime(file) { h.update(file.bytes) }   // the mapping must outlive the read
        }
        return h.finalizeHex()
    }
}

/// Lancet's version string, recorded in provenance.
public enum LancetVersion {
    /// The current version.
    public static let current = "0.1.0"
}
