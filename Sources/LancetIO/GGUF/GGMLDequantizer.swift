/// Converts stored ggml tensor data to Float32, following the block layouts of ggml's quantisation formats.
public enum GGMLDequantizer {
    /// A tensor type Lancet cannot read.
    public struct Unsupported: Error, CustomStringConvertible {
        /// The type met.
        public let type: GGMLType
        public var description: String { "tensor type \(type.name) is not supported" }
    }

    /// Dequantises `source` (a whole number of `type` blocks) into `destination`.
    public static func dequantize(_ type: GGMLType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(type.byteCount(elements: destination.count) == source.count, "dequantize: \(source.count) bytes for \(destination.count) \(type.name) elements")
        switch type {
        case .f32:
            for i in 0..<destination.count { destination[i] = Float(bitPattern: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .f16:
            for i in 0..<destination.count { destination[i] = Float(Float16(bitPattern: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<destination.count { destination[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        default:
            throw Unsupported(type: type)
        }
    }
}
