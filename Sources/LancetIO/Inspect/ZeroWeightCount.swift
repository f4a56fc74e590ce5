import LancetTensor

/// Counts of weights that are exactly zero, for `lancet inspect`'s zero share (what unstructured pruning leaves:
/// the parameter count stays, the zeros grow).
///
/// A weight counts as zero when its value is exactly ±0.0: as stored for F32, F16 and BF16, and after
/// dequantisation for the quantised types (a Q4_1 or K-quant block stores a scale and an offset, so a pruned
/// weight stays zero only when the block's dequantised value is exactly 0). Types Lancet cannot dequantise
/// (the IQ and TQ families, integer types) are not counted.
public enum ZeroWeightCount {
    /// Elements of a float buffer equal to zero.
    public static func zeros(_ values: UnsafeBufferPointer<Float>) -> Int {
        var count = 0
        for v in values where v == 0 { count += 1 }
        return count
    }

    /// Exact zeros of the GGUF tensor `info` in `file`, dequantised; nil for a type that cannot be read.
    public static func zeros(in info: GGUFTensorInfo, of file: GGUFFile) -> Int? {
        let raw = file.rawBytes(of: info)
        if info.type == .f32, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return zeros(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: info.elementCount))
        }
        guard GGMLDequantizer.supports(info.type) else { return nil }
        var values = [Float](repeating: 0, count: info.elementCount)
        return values.withUnsafeMutableBufferPointer { out -> Int? in
            guard (try? GGMLDequantizer.dequantize(info.type, from: raw, into: out)) != nil else { return nil }
            return zeros(UnsafeBufferPointer(out))
        }
    }

    /// Exact zeros of a tensor read as Float.
    public static func zeros(in tensor: Tensor) -> Int {
        tensor.withUnsafeBufferPointer { zeros($0) }
    }
}
