import Foundation
import XCTest
@testable import LancetIO
import LancetTensor

/// Random mutations of the reference model's header, parsed from memory: every case must either load or
/// throw a `GGUFError` — never crash, hang or allocate without bound.
final class GGUFFuzzTests: XCTestCase {
    /// Offsets of the header's structural fields (lengths, counts, type tags) before the tensor descriptions,
    /// found by walking the parsed metadata with the format's sizes; and where the tensor descriptions start.
    private func structuralFields(of file: GGUFFile) -> (fields: [Int], tensorInfoStart: Int) {
        var fields = [4, 8, 16]  // version, tensor count, metadata count
        var p = 24
        func walk(_ v: GGUFValue, top: Bool) {
            switch v {
            case .uint8, .int8, .bool: p += 1
            case .uint16, .int16: p += 2
            case .uint32, .int32, .float32: p += 4
            case .uint64, .int64, .float64: p += 8
            case let .string(s):
                if top { fields.append(p) }
                p += 8 + s.utf8.count
            case let .array(_, items):
                fields += [p, p + 4]  // element type, count
                p += 12
                for (i, item) in items.enumerated() {
                    if i < 3, case .string = item { fields.append(p) }  // the first few element lengths
                    walk(item, top: false)
                }
            }
        }
        for (key, value) in file.metadataEntries {
            fields.append(p)  // key length
            p += 8 + key.utf8.count
            fields.append(p)  // value type
            p += 4
            walk(value, top: true)
        }
        return (fields, p)
    }

    func testRandomHeaderMutationsOfTheReferenceModelLoadOrThrow() throws {
        let model = try GGUFTestSupport.openModel()
        let original = try MappedFile(path: GGUFTestSupport.modelPath)
        let (fields, tensorInfoStart) = structuralFields(of: model)
        let headerEnd = model.dataOffset
        XCTAssertLessThan(tensorInfoStart, headerEnd)

        // One writable copy of the file; each case mutates a few header bytes, parses, then restores them.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: original.size, alignment: 64)
        defer { buffer.deallocate() }
        buffer.copyMemory(from: original.bytes)

        var rng = SplitMix64(seed: 0x4747_5546)
        let cases = 3000
        var (loaded, rejected, tensorsRead, tensorErrors) = (0, 0, 0, 0)
        var reasons: [String: Int] = [:]
        let start = Date()
        for c in 0..<cases {
            var saved: [(Int, UInt8)] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                // Where: a structural field (or a byte of it), the tensor descriptions, the first bytes, anywhere.
                let position: Int
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: position = fields.randomElement(using: &rng)! + Int.random(in: 0..<8, using: &rng)
                case 1: position = Int.random(in: tensorInfoStart..<headerEnd, using: &rng)
                case 2: position = Int.random(in: 0..<256, using: &rng)
                default: position = Int.random(in: 0..<headerEnd, using: &rng)
                }
                let old = buffer[position]
                saved.append((position, old))
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: buffer[position] = UInt8.random(in: 0...255, using: &rng)
                case 1: buffer[position] = old ^ (1 << UInt8.random(in: 0...7, using: &rng))
                case 2: buffer[position] = 0
                default: buffer[position] = 0xFF
                }
            }
            let path = "fuzz-case-\(c).gguf"
            do {
                let file = try GGUFFile(mapped: MappedFile(viewing: UnsafeRawBufferPointer(buffer), owner: nil, path: path))
                loaded += 1
                if let info = file.tensors.randomElement(using: &rng), info.elementCount <= 1 << 23 {
                    do {
                        let t = try file.tensor(info)
                        XCTAssertEqual(t.count, info.elementCount)
                        tensorsRead += 1
                    } catch let e as GGUFError {
                        XCTAssertEqual(e.path, path)
                        tensorErrors += 1
                    }
                }
            } catch let e as GGUFError {
                XCTAssertEqual(e.path, path)
                XCTAssertFalse(e.reason.isEmpty)
                rejected += 1
                let kind = e.reason.split(separator: " ").prefix(3).joined(separator: " ")
                reasons[String(kind.prefix(30)), default: 0] += 1
            } catch {
                XCTFail("case \(c): not a GGUFError: \(error)")
            }
            for (position, old) in saved.reversed() { buffer[position] = old }
        }
        XCTAssertEqual(loaded + rejected, cases)
        XCTAssertTrue(buffer.elementsEqual(original.bytes), "restoring the mutations failed")
        let top = reasons.sorted { $0.value > $1.value }.prefix(6).map { "\($0.key)…×\($0.value)" }.joined(separator: ", ")
        print("fuzz: \(cases) cases in \(String(format: "%.1f", Date().timeIntervalSince(start))) s: \(loaded) loaded (\(tensorsRead) tensors read, \(tensorErrors) tensor errors), \(rejected) rejected; most common: \(top)")
        XCTAssertGreaterThan(loaded, 0, "some mutations (e.g. of string bytes) keep the file valid")
        XCTAssertGreaterThan(rejected, cases / 4, "most structural mutations must be caught")
    }
}
