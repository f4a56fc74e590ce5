/// A new pass's names: the kebab-case recipe key and the Swift type name derived from it.
struct PassName {
    /// The recipe key, e.g. `scale-norms`.
    let key: String
    /// The Swift type, e.g. `ScaleNorms`.
    let typeName: String

    /// Validates `key`: lowercase words of letters and digits joined by single hyphens, starting with a letter.
    init(_ key: String) throws {
        let words = key.split(separator: "-", omittingEmptySubsequences: false)
        let valid = !key.isEmpty && words.allSatisfy { word in
            !word.isEmpty && word.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        } && ("a"..."z").contains(key.first!)
        guard valid else {
            throw NewPassError("pass name '\(key)' must be kebab-case: lowercase letters and digits in words joined by single "
                + "hyphens, starting with a letter (e.g. 'scale-norms')")
        }
        self.key = key
        typeName = words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}

/// A pass family: the `LancetPasses<Family>` target and its `<Family>Passes` table.
struct PassFamily {
    /// The family, e.g. `Prune`.
    let name: String

    /// Validates `name`: an upper-case letter followed by letters and digits.
    init(_ name: String) throws {
        guard let first = name.first, ("A"..."Z").contains(first),
              name.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }) else {
            throw NewPassError("family '\(name)' must be UpperCamelCase letters and digits (e.g. 'Prune', 'MoE')")
        }
        self.name = name
    }

    /// The source target, e.g. `LancetPassesPrune`.
    var target: String { "LancetPasses\(name)" }
    /// The test target.
    var testTarget: String { "\(target)Tests" }
    /// The registration table's type, e.g. `PrunePasses`.
    var table: String { "\(name)Passes" }
}

/// What the scaffolded pass works on: one block at a time (`BlockPass`) or the whole model (`ModelPass`).
enum PassScope: String, CaseIterable {
    case block
    case model

    /// Validates `scope`: `block` or `model`.
    init(_ scope: String) throws {
        guard let value = PassScope(rawValue: scope) else {
            throw NewPassError("unknown scope '\(scope)': --scope is 'block' (a BlockPass, the default) or 'model' (a ModelPass)")
        }
        self = value
    }
}

/// A scaffolding failure, printed by SwiftPM.
struct NewPassError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
