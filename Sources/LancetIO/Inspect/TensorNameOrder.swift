/// The natural order of a model's tensors for listing: the embedding first, then the blocks in numeric order
/// (`blk.2` before `blk.10`), then everything else (final norm, output); within a group, names compared with
/// their digit runs as numbers. GGUF (`blk.N.`) and Hugging Face (`model.layers.N.`) names alike.
public enum TensorNameOrder {
    /// The block index of a tensor name (`blk.12.attn_q.weight`, `model.layers.12.mlp.up_proj.weight`), if any.
    public static func blockIndex(_ name: String) -> Int? {
        let parts = name.split(separator: ".")
        for (i, part) in parts.enumerated().dropLast() where part == "blk" || part == "layers" || part == "blocks" {
            if let n = Int(parts[i + 1]) { return n }
        }
        return nil
    }

    /// True when `a` comes before `b` in the natural order.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        let (ga, gb) = (group(a), group(b))
        if ga != gb { return ga < gb }
        return naturalLess(a, b)
    }

    /// `names` in the natural order.
    public static func sorted(_ names: [String]) -> [String] { names.sorted(by: precedes) }

    /// 0: token embedding, 1: a block's tensor, 2: anything else.
    static func group(_ name: String) -> Int {
        if blockIndex(name) != nil { return 1 }
        return name.contains("embd") || name.contains("embed") ? 0 : 2
    }

    /// Compares two strings chunk by chunk, digit runs by their numeric value (`blk.2` < `blk.10`).
    static func naturalLess(_ a: String, _ b: String) -> Bool {
        let (ca, cb) = (chunks(a), chunks(b))
        for (x, y) in zip(ca, cb) where x != y {
            if let i = Int(x), let j = Int(y), i != j { return i < j }
            return x < y
        }
        return ca.count < cb.count
    }

    /// Maximal runs of digits and of non-digits.
    static func chunks(_ s: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inDigits = false
        for ch in s {
            let digit = ch.isASCII && ch.isNumber
            if !current.isEmpty && digit != inDigits {
                out.append(current)
                current = ""
            }
            current.append(ch)
            inDigits = digit
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
