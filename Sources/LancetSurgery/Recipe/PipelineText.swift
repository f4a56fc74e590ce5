/// The one-line form of a stage, for `lancet apply -p '…'` and `lancet validate --dump`:
///
/// ```
/// magnitude(sparsity=0.5, pattern=2:4, targets=[blocks.*.mlp.*], fit=lstsq) | wanda(sparsity=0.5)
/// ```
///
/// Passes are separated by `|`; each is a name with optional `(key=value, …)` arguments. Values are
/// numbers, `true`/`false`, `null`, bare words (`2:4`, `blocks.*.mlp.*`), double-quoted strings with
/// `\"`, `\\`, `\n`, `\t`, `\r`, `\u{…}` escapes, lists `[a, b]` and mappings `{k: v}`. The argument keys
/// `targets`, `ignore` and `fit` are the pass entry's selection and fitting (as in a YAML recipe); every
/// other key is a pass option. `render` prints the canonical form, and `parse(render(x)) == x`.
/// The grammar is in `Docs/PipelineSyntax.md`.
public enum PipelineText {
    /// The passes of `text`; throws a `RecipeError` located at `source:line:column`.
    public static func parse(_ text: String, source: String = "<pipeline>") throws -> [PassInvocation] {
        var parser = PipelineParser(text: text, source: source)
        return try parser.pipeline()
    }

    /// The canonical text of a stage: passes joined with ` | `.
    public static func render(_ passes: [PassInvocation]) -> String {
        passes.map(render).joined(separator: " | ")
    }

    /// The canonical text of one pass: its options in order, then `targets`, `ignore` and `fit` when
    /// they differ from the defaults; just the name when there are no arguments. Options that are not a
    /// mapping (only possible for invocations built in code) are not printed.
    public static func render(_ pass: PassInvocation) -> String {
        var args: [String] = []
        if case let .object(entries) = pass.options {
            args += entries.map { key($0.key) + "=" + $0.value.canonicalText }
        }
        func patterns(_ list: [String]) -> String {
            OptionValue.list(list.map { .scalar($0, quoted: false, location: nil) }, location: nil).canonicalText
        }
        if !pass.selection.targets.isEmpty { args.append("targets=" + patterns(pass.selection.targets)) }
        if !pass.selection.ignore.isEmpty { args.append("ignore=" + patterns(pass.selection.ignore)) }
        if let fit = pass.fit.optionValue { args.append("fit=" + fit.canonicalText) }
        let name = OptionValue.isBareWord(pass.name, allowColon: false) ? pass.name : OptionValue.quoted(pass.name)
        return args.isEmpty ? name : name + "(" + args.joined(separator: ", ") + ")"
    }

    /// An argument key, quoted when it is not a bare word.
    static func key(_ k: String) -> String { OptionValue.isBareWord(k, allowColon: true) ? k : OptionValue.quoted(k) }

    /// The argument keys that are not pass options.
    public static let reservedKeys = RecipeParser.passEntryKeys
}
