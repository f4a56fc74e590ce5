import LancetTensor

/// Rotary position embedding settings of an attention layer.
public struct RopeConfig: Sendable, Equatable {
    /// How frequencies are rescaled for long contexts.
    public enum Scaling: Sendable, Equatable {
        /// No rescaling.
        case none
        /// Positions divided by `factor` (linear interpolation).
        case linear(factor: Double)
        /// Llama 3's piecewise rescaling of low frequencies.
        case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Int)
        /// Each inverse frequency divided by its own factor (GGUF's `rope_freqs.weight`).
        case frequencyFactors([Float])
    }

    /// The base θ of the frequencies.
    public var theta: Double
    /// Leading dimensions of each head that are rotated (the head size for Llama).
    public var rotaryDimensions: Int
    /// Which dimensions are paired: GGUF Llama weights use adjacent pairs, Hugging Face weights halves.
    public var pairing: RopePairing
    /// Frequency rescaling.
    public var scaling: Scaling

    /// Creates a configuration.
    public init(theta: Double, rotaryDimensions: Int, pairing: RopePairing, scaling: Scaling = .none) {
        self.theta = theta
        self.rotaryDimensions = rotaryDimensions
        self.pairing = pairing
        self.scaling = scaling
    }

    /// The `rotaryDimensions / 2` inverse frequencies θ^(−2i/d), rescaled as `scaling` says.
    public var inverseFrequencies: [Float] {
        let d = Double(rotaryDimensions)
        return (0..<(rotaryDimensions / 2)).map { i in
            let f = 1 / Foundation_pow(theta, Double(2 * i) / d)
            switch scaling {
            case .none: return Float(f)
            case let .linear(factor): return Float(f / factor)
            case let .llama3(factor, low, high, original):
                let wavelength = 2 * Double.pi / f
                let lowWavelength = Double(original) / low
                let highWavelength = Double(original) / high
                if wavelength < highWavelength { return Float(f) }
                if wavelength > lowWavelength { return Float(f / factor) }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return Float((1 - smooth) * f / factor + smooth * f)
            case let .frequencyFactors(factors):
                return Float(f / Double(factors[i]))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func Foundation_pow(_ a: Double, _ b: Double) -> Double { Glibc.pow(a, b) }
#else
import Darwin
@inline(__always) func Foundation_pow(_ a: Double, _ b: Double) -> Double { Darwin.pow(a, b) }
#endif
