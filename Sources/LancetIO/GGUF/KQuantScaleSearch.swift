/// The per-group scale searches of ggml's K-quant reference quantisers: for a group of values, the scale
/// (and minimum) whose rounded quants reconstruct the group with the least weighted squared error among a
/// small grid of candidates. The arithmetic is ggml's, in its order, in Float32 — the chosen quants depend
/// on every rounding, so the result is bit-identical to llama.cpp's only when computed exactly this way.
enum KQuantScaleSearch {
    /// Asymmetric quants `L ∈ 0…nmax` with `x ≈ scale × L − min` (Q4_K, Q5_K; ggml's `make_qkx2_quants`).
    ///
    /// Starts from the range of the group (the minimum capped at 0), then tries `nstep + 1` scales
    /// `(nmax + rmin + rdelta × i) / (max − min)`; for each, it rounds, solves the weighted least-squares scale
    /// and minimum for those quants (minimum capped at 0), and keeps the candidate of least weighted squared
    /// error. Writes the quants to `quants` and returns the scale and the minimum's magnitude (`min ≥ 0`).
    static func asymmetric(_ x: UnsafePointer<Float>, count n: Int, levels nmax: Int32, weights: UnsafePointer<Float>,
                           quants: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<UInt8>,
                           rmin: Float, rdelta: Float, steps: Int) -> (scale: Float, min: Float) {
        var lowest = x[0], highest = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < lowest { lowest = x[i] }
            if x[i] > highest { highest = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if lowest > 0 { lowest = 0 }
        if highest == lowest {
            for i in 0..<n { quants[i] = 0 }
            return (0, -lowest)
        }
        let levels = Float(nmax)
        var iscale = levels / (highest - lowest)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = min(nmax, max(0, GGMLQuantizer.nearestInt(iscale * (x[i] - lowest))))
            quants[i] = UInt8(l)
            let diff = scale * Float(l) + lowest - x[i]
            bestError += weights[i] * (diff * diff)
        }
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + levels) / (highest - lowest)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = min(nmax, max(0, GGMLQuantizer.nearestInt(iscale * (x[i] - lowest))))
                scratch[i] = UInt8(l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let determinant = sumW * sumL2 - sumL * sumL
            guard determinant > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / determinant
            var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                let diff = thisScale * Float(scratch[i]) + thisMin - x[i]
                error += weights[i] * (diff * diff)
            }
            if error < bestError {
                for i in 0..<n { quants[i] = scratch[i] }
                bestError = error
                scale = thisScale
                lowest = thisMin
            }
        }
        return (scale, -lowest)
    }

    /// Symmetric quants `L ∈ 0…2·nmax−1` with `x ≈ scale × (L − nmax)`, errors weighted by `x²` (Q6_K; ggml's
    /// `make_qx_quants` with `rmse_type` 1 and no importance weights).
    ///
    /// The element of largest magnitude `m` fixes the first scale `−nmax / m`; eighteen more scales
    /// `−(nmax + 0.1 × i) / m`, `i = ±1…±9`, are tried, each scored by its least-squares fit, and the best kept.
    /// A group whose largest magnitude is below 1e-15 gets all-zero quants and scale 0.
    static func symmetric(_ x: UnsafePointer<Float>, count n: Int, levels nmax: Int32, quants: UnsafeMutablePointer<Int8>) -> Float {
        var amax: Float = 0, extreme: Float = 0
        for i in 0..<n where abs(x[i]) > amax { (amax, extreme) = (abs(x[i]), x[i]) }
        if amax < 1e-15 {
            for i in 0..<n { quants[i] = 0 }
            return 0
        }
        let levels = Float(nmax)
        func quant(_ v: Float, _ iscale: Float) -> Int32 { min(nmax - 1, max(-nmax, GGMLQuantizer.nearestInt(iscale * v))) }
        var iscale = -levels / extreme
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = quant(x[i], iscale)
            quants[i] = Int8(l + nmax)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(levels + 0.1 * Float(step)) / extreme
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let l = quant(x[i], iscale)
                let w = x[i] * x[i], fl = Float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { quants[i] = Int8(quant(x[i], iscale) + nmax) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }
}
