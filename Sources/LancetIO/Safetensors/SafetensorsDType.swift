/// The element types of the safetensors format, by their header names (`"F32"`, `"BF16"`, …).
///
/// Every type is recognised so that a file holding, say, I64 position ids opens and lists its tensors;
/// only the floating-point types in `isReadableAsFloat` can be read as a Float32 `Tensor`.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"
    case c64 = "C64"

    /// The header name, e.g. `"BF16"`.
    public var name: String { rawValue }

    /// Bits per element (4 and 6 for the packed micro-float types).
    public var bitWidth: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .f64, .i64, .u64, .c64: return 64
        }
    }

    /// True for the types `SafetensorsFile.tensor(_:)` converts to Float32: F32, F16, BF16 and F64.
    public var isReadableAsFloat: Bool { [.f32, .f16, .bf16, .f64].contains(self) }

    /// True for the types `SafetensorsWriter` can store: F32, F16 and BF16.
    public var isWritable: Bool { [.f32, .f16, .bf16].contains(self) }

    /// Bytes taken by `elements` elements, or nil when they do not fill a whole number of bytes
    /// (possible only for the packed 4- and 6-bit types) or the count overflows.
    public func byteCount(elements: Int) -> Int? {
        let (bits, overflow) = elements.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}
