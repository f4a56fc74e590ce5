import LancetIR

/// How a perplexity is measured. Both protocols tokenise the whole text once (with BOS/EOS as the
/// tokenizer's metadata asks), cut it into non-overlapping windows of `context` tokens from token 0 (a trailing
/// partial window is dropped), run each window from an empty context, and report `exp` of the mean of the
/// windows' mean next-token NLLs. They differ in which predictions are scored and in the first token of a window.
public enum PerplexityProtocol: String, Sendable, Codable, CaseIterable {
    /// The Wanda/SparseGPT papers' protocol: every prediction of a window is scored (positions 0 … context−2
    /// predicting tokens 1 … context−1), and windows are run as cut.
    case papers
    /// llama.cpp's `llama-perplexity` (its `perplexity` function, no `--ppl-stride`): the same windows ("chunks"),
    /// only the predictions made at positions context/2 … context−2 scored (predicting tokens context/2+1 …
    /// context−1), and, when the tokenizer adds BOS, the first token of every window replaced by BOS before
    /// running it (the first window already starts with the BOS the tokenizer added to the text).
    case llamaCpp = "llama.cpp"

    /// The first position whose prediction is scored in a window of `context` tokens.
    public func scoreFrom(context: Int) -> Int {
        switch self {
        case .papers: return 0
        case .llamaCpp: return context / 2
        }
    }

    /// The token that replaces the first of every window: BOS under llama.cpp's protocol when `tokenizer`
    /// prepends BOS to a text; nil (windows run as cut) otherwise.
    public func windowStartToken(tokenizer: (any ModelTokenizer)?) -> Int32? {
        guard self == .llamaCpp, let tokenizer, let bos = tokenizer.beginToken else { return nil }
        // Whether the tokenizer adds BOS is what it does to an empty text (the IR's tokenizer view has no flag).
        return tokenizer.encodeText("", addSpecialTokens: true, parseSpecial: false).first == bos ? bos : nil
    }

    /// One line naming the protocol, the predictions scored (from position `scoreFrom` of windows of `context`
    /// tokens) and what starts a window.
    public func summary(context: Int, scoreFrom: Int, windowStartToken: Int32?) -> String {
        let name = self == .papers ? "papers (Wanda/SparseGPT)" : "llama.cpp (llama-perplexity)"
        let scored = scoreFrom == 0 ? "every prediction of each window scored" : "predictions at positions \(scoreFrom)…\(context - 2) of each window scored"
        let start = windowStartToken.map { "BOS (id \($0)) placed first in every window" } ?? "windows run as cut"
        return "\(name): \(scored); \(start)"
    }
}
