/// Converts stored ggml tensor data to Float32, following the block layouts of ggml's quantisation formats
/// (see ggml's `ggml-common.h`): plain F32, F16 and BF16; the legacy 32-element formats Q4_0, Q4_1, Q5_0,
/// Q5_1 and Q8_0 (`GGMLDequantizer+Legacy.swift`); the 256-element K-quants Q2_K to Q6_K and Q8_K
/// (`GGMLDequantizer+KQuants.swift`). Large tensors are converted in parallel, a range of blocks per task.
public enum GGMLDequantizer {
    /// A tensor type Lancet cannot read.
    public struct Unsupported: Error, CustomStringConvertible {
        /// The type met.
        public let type: GGMLType
        public var description: String { "tensor type \(type.name) is not supported" }
    }

    /// Converts `count` consecutive blocks at `source` into `count × blockSize` floats at `destination`.
    typealias BlockRun = (_ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int) -> Void

    /// Tensors with fewer elements than this are converted on the calling thread.
    static let parallelThreshold = 1 << 17
    /// Elements per parallel task (rounded to whole blocks).
    static let elementsPerTask = 1 << 16

    /// True when `type` can be dequantised.
    public static func supports(_ type: GGMLType) -> Bool { run(for: type) != nil }

    /// Dequantises `source` (a whole number of `type` blocks) into `destination`.
    /// Throws `Unsupported` for types without a converter (the IQ and TQ families, integer types).
    public static func dequantize(_ type: GGMLType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(destination.count % type.blockSize == 0 && type.byteCount(elements: destination.count) == source.count,
                     "dequantize: \(source.count) bytes for \(destination.count) \(type.name) elements")
        guard let run = run(for: type) else { throw Unsupported(type: type) }
        guard let src = source.baseAddress, let dst = destination.baseAddress, !destination.isEmpty else { return }
        let (blockSize, blockBytes) = (type.blockSize, type.blockBytes)
        BlockTasks.run(blocks: destination.count / blockSize, blockSize: blockSize, serialBelow: parallelThreshold, elementsPerTask: elementsPerTask) { first, count in
            run(src + first * blockBytes, dst + first * blockSize, count)
        }
    }

    /// The converter for `type`, or nil when it is not supported.
    static func run(for type: GGMLType) -> BlockRun? {
        switch type {
        case .f32: f32
        case .f16: f16
        case .bf16: bf16
        case .q4_0: q4_0
        case .q4_1: q4_1
        case .q5_0: q5_0
        case .q5_1: q5_1
        case .q8_0: q8_0
        case .q2_K: q2_K
        case .q3_K: q3_K
        case .q4_K: q4_K
        case .q5_K: q5_K
        case .q6_K: q6_K
        case .q8_K: q8_K
        default: nil
        }
    }

    // MARK: Plain types (one element per "block")

    static func f32(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    }

    static func f16(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] = half(x, 2 * i) }
    }

    static func bf16(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] = Float(bitPattern: UInt32(UInt16(littleEndian: x.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
    }

    // MARK: Field readers shared by the block formats

    /// The IEEE half-precision number stored little-endian at `offset`.
    @inline(__always) static func half(_ x: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: x.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// The byte at `offset`.
    @inline(__always) static func byte(_ x: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        x.load(fromByteOffset: offset, as: UInt8.self)
    }
}
