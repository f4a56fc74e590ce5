/// Splits text into the words that BPE merges within, as llama.cpp's pre-tokenizer of the same
/// name does (`tokenizer.ggml.pre`).
///
/// Each algorithm is a hand-written scanner over Unicode scalars that reproduces llama.cpp's own
/// splitting, quirks included, rather than the regex it documents:
///
/// | algorithm | llama.cpp names | regexes, applied in turn to each piece of the previous split |
/// |---|---|---|
/// | `gpt2` | gpt-2, phi-2, roberta-bpe, mpt, olmo, jais, jina-* , gigachat | `'s\|'t\|'re\|'ve\|'m\|'ll\|'d\| ?\p{L}+\| ?\p{N}+\| ?[^\s\p{L}\p{N}]+\|\s+(?!\S)` |
/// | `digitsThenGPT2` | smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b | `\p{N}` (each digit alone), then gpt2 |
/// | `llama3` | llama3, llama-v3, llama-bpe, falcon3, dbrx, smaug-bpe | `(?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d)\|[^\r\n\p{L}\p{N}]?\p{L}+\|\p{N}{1,3}\| ?[^\s\p{L}\p{N}]+[\r\n]*\|\s*[\r\n]+\|\s+(?!\S)\|\s+` |
/// | `qwen2` | qwen2, deepseek-r1-qwen, stablelm2, megrez | as llama3 with `\p{N}` for `\p{N}{1,3}` |
/// | `llamaDefault` | default, or no name | `[\p{P}$+<=>^~\|]+`, then gpt2, then `\p{N}+`, then `[0-9][0-9][0-9]` |
///
/// Details that follow llama.cpp and not a textbook regex engine:
/// - `\s+(?!\S)`: a whitespace run of two or more followed by a non-space gives back its last
///   character (which then joins the next word); at the end of a piece the whole run is one word.
///   A run of one followed by a non-space stays a word of its own unless it is a plain space.
/// - gpt2's contractions are lower-case only (`'S` is punctuation followed by a letter); llama3's are
///   case-insensitive (ASCII, which is all llama.cpp's `unicode_tolower` can map to these letters).
/// - `\p{N}` and the default regexes run in llama.cpp through `std::regex` over a "collapsed"
///   text (one byte per code point); this is equivalent to testing the classes of `CodepointClass`.
/// - qwen2's regex is not one of llama.cpp's hand-coded scanners, so llama.cpp runs it with
///   `std::regex` (leftmost-first backtracking); on the collapsed text that engine gives the same
///   words as the llama3 scanner with one-digit numbers, which is what is used here.
public struct PreTokenizer: Sendable, Equatable {
    /// The splitting algorithms.
    public enum Algorithm: String, Sendable, CaseIterable {
        /// llama.cpp's fallback chain for BPE vocabularies without a known pre-tokenizer.
        case llamaDefault
        /// GPT-2's regex.
        case gpt2
        /// Every number character alone, then GPT-2's regex (SmolLM, StarCoder).
        case digitsThenGPT2
        /// Llama 3's regex (numbers in groups of up to three).
        case llama3
        /// Qwen 2's regex (numbers one digit at a time).
        case qwen2
    }

    /// The name as given in the source (`tokenizer.ggml.pre`).
    public let name: String
    /// The algorithm the name selects.
    public let algorithm: Algorithm

    /// llama.cpp pre-tokenizer names and the algorithm each selects.
    public static let algorithmsByName: [String: Algorithm] = {
        var m: [String: Algorithm] = ["": .llamaDefault, "default": .llamaDefault]
        for n in ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
                  "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"] { m[n] = .gpt2 }
        for n in ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"] {
            m[n] = .digitsThenGPT2
        }
        for n in ["llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"] { m[n] = .llama3 }
        for n in ["qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"] { m[n] = .qwen2 }
        return m
    }()

    /// The supported names, sorted, for error messages.
    public static var supportedNames: [String] { algorithmsByName.keys.filter { !$0.isEmpty }.sorted() }

    /// The pre-tokenizer llama.cpp uses for `name`, or nil if the name is not supported.
    public init?(name: String) {
        guard let a = Self.algorithmsByName[name] else { return nil }
        self.name = name
        self.algorithm = a
    }

    /// A pre-tokenizer with an explicit algorithm.
    public init(name: String, algorithm: Algorithm) {
        self.name = name
        self.algorithm = algorithm
    }

    /// Splits `text` into words.
    public func split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let values = scalars.map(\.value)
        let ends = wordEnds(values)
        var out: [String] = []
        var start = 0
        for e in ends {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: scalars[start..<e])
            out.append(String(v))
            start = e
        }
        return out
    }

    /// The end index of every word of `scalars`, in order; the last is `scalars.count`.
    func wordEnds(_ scalars: [UInt32]) -> [Int] {
        let classes = scalars.map(CodepointClass.of)
        return scalars.withUnsafeBufferPointer { cp in
            classes.withUnsafeBufferPointer { cl in wordEnds(cp, cl) }
        }
    }

    /// The end index of every word, given the scalars and their `CodepointClass` flags.
    func wordEnds(_ cp: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>) -> [Int] {
        if cp.isEmpty { return [] }
        let s = PreTokenizerScanner(cp: cp, cl: cl)
        let whole = [cp.count]
        switch algorithm {
        case .gpt2:
            return s.gpt2(whole)
        case .digitsThenGPT2:
            return s.gpt2(s.isolateEach(whole, CodepointClass.number))
        case .llama3:
            return s.llama3(whole, maxDigits: 3)
        case .qwen2:
            return s.llama3(whole, maxDigits: 1)
        case .llamaDefault:
            let punct = s.isolateRuns(whole) { v, c in
                c & CodepointClass.punctuation != 0 || (v < 128 && c & CodepointClass.symbol != 0 && v != 0x60)
            }
            let words = s.gpt2(punct)
            let numbers = s.isolateRuns(words) { _, c in c & CodepointClass.number != 0 }
            return s.isolateDigitTriples(numbers)
        }
    }
}
