/// Converts Float32 values to the ggml storage types Lancet writes: F32, F16, BF16, the legacy 32-element
/// formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (`GGMLQuantizer+Legacy.swift`) and the 256-element K-quants Q4_K,
/// Q5_K and Q6_K (`GGMLQuantizer+KQuants.swift`, scale searches in `KQuantScaleSearch.swift`).
///
/// Every format follows ggml's reference quantiser (`quantize_row_*_ref`, what `llama-quantize` runs when it
/// has no importance matrix) operation for operation, in Float32 without fused multiply-adds, so a tensor
/// written here has the same bytes as llama.cpp's encoding of the same values. Blocks are independent, so
/// large inputs are encoded in parallel, a range of blocks per task, with the same result.
public enum GGMLQuantizer {
    /// The types `encode` can produce.
    public static let writableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    /// An input value the target type cannot represent.
    public struct NonFinite: Error, CustomStringConvertible {
        /// Index of the offending element.
        public let index: Int
        /// The value met.
        public let value: Float
        /// The type being written.
        public let type: GGMLType
        public var description: String { "element \(index) is \(value), which \(type.name) cannot store" }
    }

    /// Encodes `count` consecutive blocks from `source` into `destination`.
    typealias BlockEncoder = (_ source: UnsafePointer<Float>, _ destination: UnsafeMutableRawPointer, _ count: Int) -> Void

    /// Inputs with fewer elements than this are encoded on the calling thread.
    static let parallelThreshold = 1 << 14
    /// Elements per parallel task (rounded to whole blocks).
    static let elementsPerTask = 1 << 13

    /// Encodes `source` (a whole number of `type` blocks) into `destination` (exactly `type.byteCount` bytes).
    /// F16 and BF16 round to nearest, ties to even. The block formats store what ggml's reference quantiser
    /// stores; see each format's documentation. Throws `NonFinite` when a block format meets an infinity or
    /// NaN (F32, F16 and BF16 store them as they are).
    public static func encode(_ type: GGMLType, from source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(writableTypes.contains(type), "GGMLQuantizer: cannot encode \(type.name)")
        precondition(source.count % type.blockSize == 0 && type.byteCount(elements: source.count) == destination.count,
                     "GGMLQuantizer: \(destination.count) bytes for \(source.count) \(type.name) elements")
        switch type {
        case .f32:
            for (i, x) in source.enumerated() { destination.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            return
        case .f16:
            for (i, x) in source.enumerated() { destination.storeBytes(of: Float16(x).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            return
        case .bf16:
            for (i, x) in source.enumerated() { destination.storeBytes(of: bfloat16Bits(x).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            return
        default:
            break
        }
        if let i = source.firstIndex(where: { !$0.isFinite }) { throw NonFinite(index: i, value: source[i], type: type) }
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let encoder = blockEncoder(for: type)
        let (blockSize, blockBytes) = (type.blockSize, type.blockBytes)
        BlockTasks.run(blocks: source.count / blockSize, blockSize: blockSize, serialBelow: parallelThreshold, elementsPerTask: elementsPerTask) { first, count in
            encoder(src + first * blockSize, dst + first * blockBytes, count)
        }
    }

    /// The bfloat16 nearest to `x` (ties to even); NaNs stay NaN (made quiet), as in ggml.
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(u >> 16) | 0x40 }
        let roundingBias: UInt32 = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ roundingBias) >> 16)
    }

    /// The encoder of a block format.
    static func blockEncoder(for type: GGMLType) -> BlockEncoder {
        switch type {
        case .q8_0: q8_0
        case .q4_0: q4_0
        case .q4_1: q4_1
        case .q5_0: q5_0
        case .q5_1: q5_1
        case .q4_K: q4_K
        case .q5_K: q5_K
        case .q6_K: q6_K
        default: preconditionFailure("GGMLQuantizer: \(type.name) is not a block format Lancet writes")
        }
    }

    // MARK: Shared helpers

    /// Stores `x` as an IEEE binary16 (nearest, ties to even), little-endian.
    @inline(__always) static func storeHalf(_ x: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: Float16(x).bitPattern.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// C's conversion of a float to a 32-bit integer as x86-64 performs it (`cvttss2si`): truncation toward
    /// zero, and the "integer indefinite" value `Int32.min` for NaN and values out of range. The reference
    /// quantisers convert to 8-bit integers through it (keeping the low byte).
    @inline(__always) static func truncatingConversion(_ x: Float) -> Int32 {
        x.isNaN || x >= 2_147_483_648 || x < -2_147_483_648 ? .min : Int32(x)
    }

    /// ggml's `nearest_int`: rounds to nearest, ties to even, by adding 1.5 × 2²³ and reading the low mantissa
    /// bits (exact for |x| < 2²²; other inputs give the same bits ggml's does).
    @inline(__always) static func nearestInt(_ x: Float) -> Int32 {
        let v = x + 12_582_912
        return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
    }
}
