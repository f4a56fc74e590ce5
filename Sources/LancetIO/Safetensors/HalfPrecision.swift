/// Conversions between Float32 and the 16-bit float formats stored in safetensors files.
public enum HalfPrecision {
    /// The IEEE binary16 bit pattern nearest to `x` (round to nearest, ties to even; overflow gives ±inf).
    @inlinable
    public static func float16Bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// The Float32 value of an IEEE binary16 bit pattern (exact).
    @inlinable
    public static func float(float16Bits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// The bfloat16 bit pattern nearest to `x`: round to nearest, ties to even, as PyTorch does.
    /// Finite values too large round to ±inf; NaN stays NaN (quiet, same sign).
    @inlinable
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        // Adding 0x7FFF plus the lowest kept bit rounds the dropped 16 bits to nearest, ties to even.
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The Float32 value of a bfloat16 bit pattern (exact: bfloat16 is the top half of a Float32).
    @inlinable
    public static func float(bfloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
