/// Converts Float32 values to the ggml storage types Lancet writes: F32, F16, BF16 and Q8_0.
/// The rounding is ggml's reference rounding, so a tensor written here equals llama.cpp's encoding of it.
public enum GGMLQuantizer {
    /// The types `encode` can produce.
    public static let writableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0]

    /// An input value the target type cannot represent.
    public struct NonFinite: Error, CustomStringConvertible {
        /// Index of the offending element.
        public let index: Int
        /// The value met.
        public let value: Float
        public var description: String { "element \(index) is \(value), which Q8_0 cannot store" }
    }

    /// Encodes `source` (a whole number of `type` blocks) into `destination` (exactly `type.byteCount` bytes).
    /// F16 and BF16 round to nearest, ties to even; Q8_0 stores per block of 32 `d = amax / 127` as f16 and
    /// `q = round(x / d)` (ties away from zero, computed as `x × (1 / d)` with the unrounded `d`, as ggml does).
    /// Throws `NonFinite` when a Q8_0 block holds an infinity or NaN.
    public static func encode(_ type: GGMLType, from source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(writableTypes.contains(type), "GGMLQuantizer: cannot encode \(type.name)")
        precondition(source.count % type.blockSize == 0 && type.byteCount(elements: source.count) == destination.count,
                     "GGMLQuantizer: \(destination.count) bytes for \(source.count) \(type.name) elements")
        switch type {
        case .f32:
            for (i, x) in source.enumerated() { destination.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for (i, x) in source.enumerated() { destination.storeBytes(of: Float16(x).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for (i, x) in source.enumerated() { destination.storeBytes(of: bfloat16Bits(x).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        default:
            try encodeQ8_0(source, destination)
        }
    }

    /// The bfloat16 nearest to `x` (ties to even); NaNs stay NaN (made quiet), as in ggml.
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(u >> 16) | 0x40 }
        let roundingBias: UInt32 = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ roundingBias) >> 16)
    }

    static func encodeQ8_0(_ source: UnsafeBufferPointer<Float>, _ destination: UnsafeMutableRawBufferPointer) throws {
        for b in 0..<(source.count / 32) {
            let x = source.baseAddress! + 32 * b
            let o = 34 * b
            var amax: Float = 0
            for j in 0..<32 {
                guard x[j].isFinite else { throw NonFinite(index: 32 * b + j, value: x[j]) }
                amax = max(amax, abs(x[j]))
            }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            destination.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: o, as: UInt16.self)
            for j in 0..<32 {
                let q = (x[j] * id).rounded(.toNearestOrAwayFromZero)
                destination.storeBytes(of: Int8(max(-127, min(127, q))), toByteOffset: o + 2 + j, as: Int8.self)
            }
        }
    }
}
