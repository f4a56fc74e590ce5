import LancetTensor

/// A weight tensor that holds NaN or ±infinity.
public struct NonFiniteTensor: Sendable, Equatable, CustomStringConvertible {
    /// The tensor's name as stored in the file (`blk.0.attn_q.weight`, `model.layers.0.self_attn.q_proj.weight`).
    public var name: String
    /// The file that stores it.
    public var file: String
    /// Elements that are NaN.
    public var nanCount: Int
    /// Elements that are +∞ or −∞.
    public var infinityCount: Int
    /// All elements of the tensor.
    public var elementCount: Int
    /// Row-major index of the first non-finite element.
    public var firstIndex: Int

    public var description: String {
        var parts: [String] = []
        if nanCount > 0 { parts.append("\(nanCount) NaN") }
        if infinityCount > 0 { parts.append("\(infinityCount) infinite") }
        return "tensor '\(name)' holds \(parts.joined(separator: " and ")) of its \(elementCount) values (the first at index \(firstIndex))"
    }
}

/// The check every importer runs on every weight it loads: NaN and ±infinity are refused with the tensor's
/// name, or, under `LoadOptions.NonFiniteWeights.report`, collected in `findings` and the load goes on.
///
/// The common case costs one vectorised pass over the Float32 elements (a running maximum of the
/// exponent-and-mantissa bits, which reaches the infinity pattern only for a non-finite element), or over the
/// 16-bit values of an F16 or BF16 tensor not yet widened; a tensor that fails is then scanned again to count
/// and locate what it holds.
public final class NonFiniteWeightCheck {
    /// What to do with a non-finite tensor.
    public let policy: LoadOptions.NonFiniteWeights
    /// The non-finite tensors found so far (only under `.report`; `.refuse` throws at the first).
    public private(set) var findings: [NonFiniteTensor] = []

    /// A check with `policy`.
    public init(policy: LoadOptions.NonFiniteWeights) { self.policy = policy }

    /// Checks `tensor`, stored as `name` in `file`; throws a `ModelImportError` for `importPath` under `.refuse`.
    public func check(_ tensor: Tensor, name: String, file: String, importPath: String) throws {
        let found: NonFiniteTensor?
        if let half = tensor.unwidenedHalfSource {
            // 16-bit values still in the file: checked as they are, so the check does not widen them.
            found = Self.containsNonFinite(half, count: tensor.count)
                ? Self.describe(count: tensor.count, { half[$0] }, name: name, file: file) : nil
        } else {
            found = tensor.withUnsafeBufferPointer { p in
                Self.containsNonFinite(p) ? Self.describe(count: p.count, { p[$0] }, name: name, file: file) : nil
            }
        }
        guard let found else { return }
        switch policy {
        case .refuse:
            let stored = file == importPath ? "" : " (in \(file))"
            throw ModelImportError(importPath, "\(found)\(stored); a model with non-finite weights is refused (set \(LoadOptions.allowNonFiniteVariable)=1, or pass --allow-nonfinite to `lancet inspect`, to load it anyway)")
        case .report:
            findings.append(found)
        }
    }

    /// True when any element is NaN or ±infinity. Bits with the sign cleared are at least 0x7F80_0000
    /// exactly for those; the maximum over 16-lane vectors is one compare per element.
    public static func containsNonFinite(_ p: UnsafeBufferPointer<Float>) -> Bool {
        guard let base = p.baseAddress else { return false }
        let raw = UnsafeRawPointer(base)
        let magnitude = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
        var acc = SIMD16<UInt32>(repeating: 0)
        let n = p.count
        var i = 0
        while i + 16 <= n {
            acc = pointwiseMax(acc, raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self) & magnitude)
            i += 16
        }
        var largest = acc.max()
        while i < n {
            largest = max(largest, base[i].bitPattern & 0x7FFF_FFFF)
            i += 1
        }
        return largest >= 0x7F80_0000
    }

    /// True when any of the `count` 16-bit values is NaN or ±infinity: an all-ones exponent, so the bits with the
    /// sign cleared reach the infinity pattern (0x7C00 for f16, 0x7F80 for bf16) exactly for those.
    public static func containsNonFinite(_ half: HalfSource, count n: Int) -> Bool {
        let infinity: UInt16 = half.format == .f16 ? 0x7C00 : 0x7F80
        let raw = UnsafeRawPointer(half.bits)
        var acc = SIMD32<UInt16>(repeating: 0)
        var i = 0
        while i + 32 <= n {
            acc = pointwiseMax(acc, raw.loadUnaligned(fromByteOffset: 2 * i, as: SIMD32<UInt16>.self) & 0x7FFF)
            i += 32
        }
        var largest = acc.max()
        while i < n {
            largest = max(largest, half.bits[i] & 0x7FFF)
            i += 1
        }
        return largest >= infinity
    }

    /// Counts and locates the non-finite elements of a tensor of `count` elements known to hold some.
    static func describe(count: Int, _ element: (Int) -> Float, name: String, file: String) -> NonFiniteTensor {
        var (nan, inf, first) = (0, 0, -1)
        for i in 0..<count {
            let x = element(i)
            guard !x.isFinite else { continue }
            if x.isNaN { nan += 1 } else { inf += 1 }
            if first < 0 { first = i }
        }
        return NonFiniteTensor(name: name, file: file, nanCount: nan, infinityCount: inf, elementCount: count, firstIndex: first)
    }
}
