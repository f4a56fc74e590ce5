#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Rotary position embedding, applied in place to query or key rows.
//
// For token t at position p, head h and pair i < rotaryDim/2, with angle θ = p·invFreq[i]
// (a Float product, as HF and ggml form it), the pair (a, b) becomes
//   (a·cos θ − b·sin θ,  a·sin θ + b·cos θ)
// and with `inverse` the rotation by −θ. Rotations are orthogonal, so the inverse rotation is also
// the vector-Jacobian product of the forward one. Dimensions rotaryDim..<headDim are untouched
// (partial rotary).

/// Which head dimensions form the rotated pairs.
public enum RopePairing: Sendable {
    /// Pairs (2i, 2i+1): ggml's normal RoPE (LLAMA_ROPE_TYPE_NORM, used by GGUF Llama files, whose
    /// Q/K weights llama.cpp's converter permutes accordingly).
    case adjacent
    /// Pairs (i, i + rotaryDim/2): GPT-NeoX RoPE, HF `rotate_half` (LLAMA_ROPE_TYPE_NEOX).
    case halves
}

/// Inverse frequencies invFreq[i] = theta^(−2i/rotaryDim) for i in 0..<rotaryDim/2.
///
/// Computed in Double with `pow` and rounded once to Float. (llama.cpp multiplies a Float
/// theta_scale = powf(theta, −2/d) cumulatively, HF raises theta to Float powers; both agree with
/// this to a few Float ulp.) Scaled variants (linear, NTK, YaRN, Llama 3) are precomputed by the
/// caller and passed to `rope` directly.
public func ropeInverseFrequencies(rotaryDim: Int, theta: Double) -> [Float] {
    precondition(rotaryDim > 0 && rotaryDim % 2 == 0, "ropeInverseFrequencies: rotaryDim \(rotaryDim) must be even and positive")
    precondition(theta > 0, "ropeInverseFrequencies: theta must be positive")
    return (0..<(rotaryDim / 2)).map { i in Float(pow(theta, -Double(2 * i) / Double(rotaryDim))) }
}

/// Rotates query or key rows in place.
///
/// Shapes: `x` holds `tokens` rows with stride `rowStride` (≥ heads·headDim); each row is `heads`
/// heads of `headDim` values. `positions` [tokens], `inverseFrequencies` [rotaryDim/2].
/// `rotaryDim` is even and ≤ headDim. `inverse` rotates by −θ (undoes `rope`; also its VJP).
public func rope(
    x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, rowStride: Int,
    positions: UnsafePointer<Int32>, inverseFrequencies: UnsafePointer<Float>, rotaryDim: Int,
    pairing: RopePairing, inverse: Bool = false
) {
    precondition(tokens >= 0 && heads >= 0 && headDim > 0, "rope: tokens \(tokens), heads \(heads), headDim \(headDim)")
    precondition(rotaryDim > 0 && rotaryDim % 2 == 0 && rotaryDim <= headDim, "rope: rotaryDim \(rotaryDim) must be even and in 2...\(headDim)")
    precondition(rowStride >= heads * headDim, "rope: rowStride \(rowStride) < heads·headDim \(heads * headDim)")
    let half = rotaryDim / 2
    let sign: Float = inverse ? -1 : 1
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { table in
        let cosines = table.baseAddress!
        let sines = cosines + half
        for t in 0..<tokens {
            let p = Float(positions[t])
            for i in 0..<half {
                let angle = p * inverseFrequencies[i]
                cosines[i] = cosf(angle)
                sines[i] = sign * sinf(angle)
            }
            for h in 0..<heads {
                let v = x + t * rowStride + h * headDim
                switch pairing {
                case .adjacent:
                    for i in 0..<half {
                        let a = v[2 * i], b = v[2 * i + 1]
                        v[2 * i] = a * cosines[i] - b * sines[i]
                        v[2 * i + 1] = a * sines[i] + b * cosines[i]
                    }
                case .halves:
                    let w = v + half
                    var i = 0
                    while i + 16 <= half {
                        let a = load16(v + i), b = load16(w + i)
                        let c = load16(cosines + i), s = load16(sines + i)
                        store16(a * c - b * s, v + i)
                        store16(a * s + b * c, w + i)
                        i += 16
                    }
                    while i < half {
                        let a = v[i], b = w[i]
                        v[i] = a * cosines[i] - b * sines[i]
                        w[i] = a * sines[i] + b * cosines[i]
                        i += 1
                    }
                }
            }
        }
    }
}

/// Naive reference for `rope`, with the angle and its sine and cosine in Double.
func ropeReference(
    x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, rowStride: Int,
    positions: UnsafePointer<Int32>, inverseFrequencies: UnsafePointer<Float>, rotaryDim: Int,
    pairing: RopePairing, inverse: Bool = false
) {
    let half = rotaryDim / 2
    for t in 0..<tokens {
        for h in 0..<heads {
            for i in 0..<half {
                let angle = Double(Float(positions[t]) * inverseFrequencies[i]) * (inverse ? -1 : 1)
                let (ia, ib) = pairing == .adjacent ? (2 * i, 2 * i + 1) : (i, i + half)
                let base = t * rowStride + h * headDim
                let a = Double(x[base + ia]), b = Double(x[base + ib])
                x[base + ia] = Float(a * cos(angle) - b * sin(angle))
                x[base + ib] = Float(a * sin(angle) + b * cos(angle))
            }
        }
    }
}
