import LancetTensor

/// Converting q/k projection rows between the two RoPE pairings (`RopePairing` is LancetTensor's):
///
/// - `halves` (Hugging Face): row `j` rotates with row `j + headDim/2`, for `j < headDim/2`.
/// - `adjacent` (GGUF, Meta's original checkpoints): row `2j` rotates with row `2j + 1`.
///
/// llama.cpp's `convert_hf_to_gguf.py` turns halves into adjacent with
/// `w.reshape(heads, 2, headDim/2, …).swapaxes(1, 2).reshape(w.shape)`; `permuteRows` does the same and
/// its inverse.
extension RopePairing {
    /// The rows of `weight` (a `[heads·headDim, in]` matrix, or a `[heads·headDim]` bias) rearranged from
    /// pairing `from` to pairing `to`. Use the query head count for q and the key-value head count for k.
    /// `headDim` must be even and the first extent must be `heads · headDim` (programmer errors otherwise).
    public static func permuteRows(_ weight: Tensor, heads: Int, headDim: Int, from: RopePairing, to: RopePairing) -> Tensor {
        precondition(weight.rank >= 1 && weight.shape[0] == heads * headDim, "RopePairing: \(weight.shape) is not \(heads) heads × \(headDim) rows")
        precondition(headDim % 2 == 0, "RopePairing: head dimension \(headDim) is odd")
        if from == to { return weight }
        let half = headDim / 2
        let rowLength = weight.count / max(weight.shape[0], 1)
        // adjacent row 2j + s holds halves row s·half + j, for s ∈ {0, 1}.
        func halvesRow(ofAdjacent r: Int) -> Int { (r % 2) * half + r / 2 }
        return Tensor(shape: weight.shape) { out in
            weight.withUnsafeBufferPointer { src in
                for h in 0..<heads {
                    for r in 0..<headDim {
                        let (dst, srcRow) = to == .adjacent ? (r, halvesRow(ofAdjacent: r)) : (halvesRow(ofAdjacent: r), r)
                        let d = (h * headDim + dst) * rowLength, s = (h * headDim + srcRow) * rowLength
                        for k in 0..<rowLength { out[d + k] = src[s + k] }
                    }
                }
            }
        }
    }
}
