import CYaml

/// Refuses YAML anchors (`&a`), aliases (`*a`) and merge keys (`<<`) by reading libyaml's event stream,
/// before any node is composed: an alias is never expanded, so a "billion laughs" recipe (nine levels of
/// nine-fold aliases) is refused at its first anchor, in the time it takes to read one line.
///
/// ```yaml
/// model: &m foo.gguf      # refused here: recipe.yaml:1:8
/// stages: [{name: *m, passes: [magnitude]}]
/// ```
///
/// Recipes are short and read top-down, so nothing is lost: write each value out in full. Syntax errors
/// end the scan quietly; the composer that reads the recipe afterwards reports them with their context.
enum YAMLAliasScan {
    /// The first anchor, alias or merge key of `text`, as a located error; nil when there is none (or
    /// when a syntax error comes first).
    static func firstAlias(in text: String, file: String) -> RecipeError? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> RecipeError? in
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var containers = ContainerStack()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let at = SourceLocation(file: file, line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_ALIAS_EVENT:
                    let name = string(event.data.alias.anchor) ?? ""
                    return refusal(at, "found the alias '*\(name)' (a value or pattern that starts with '*' must be quoted)")
                case YAML_SCALAR_EVENT:
                    let isKey = containers.nextNodeIsKey()
                    if let anchor = string(event.data.scalar.anchor) { return refusal(at, "found the anchor '&\(anchor)'") }
                    let scalar = event.data.scalar
                    if isKey, isMergeKey(tag: scalar.tag, style: scalar.style, value: scalar.value, length: scalar.length) {
                        return refusal(at, "found the merge key '<<'")
                    }
                case YAML_SEQUENCE_START_EVENT:
                    _ = containers.nextNodeIsKey()
                    if let anchor = string(event.data.sequence_start.anchor) { return refusal(at, "found the anchor '&\(anchor)'") }
                    containers.push(mapping: false)
                case YAML_MAPPING_START_EVENT:
                    _ = containers.nextNodeIsKey()
                    if let anchor = string(event.data.mapping_start.anchor) { return refusal(at, "found the anchor '&\(anchor)'") }
                    containers.push(mapping: true)
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    containers.pop()
                default:
                    break
                }
            }
        }
    }

    /// The error at `location`.
    static func refusal(_ location: SourceLocation, _ detail: String) -> RecipeError {
        RecipeError(location, path: "", "YAML anchors/aliases/merge keys are not allowed in recipes: \(detail); write each value out in full")
    }

    /// Whether a mapping key is YAML's merge key: a plain `<<`, or any scalar tagged `!!merge`.
    static func isMergeKey(tag: UnsafeMutablePointer<yaml_char_t>?, style: yaml_scalar_style_t, value: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> Bool {
        if string(tag) == "tag:yaml.org,2002:merge" { return true }
        guard style == YAML_PLAIN_SCALAR_STYLE, length == 2, let value else { return false }
        return value[0] == UInt8(ascii: "<") && value[1] == UInt8(ascii: "<")
    }

    /// A NUL-terminated libyaml string (anchor, tag), or nil.
    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    /// The open sequences and mappings, and for each mapping whether its next node is a key.
    struct ContainerStack {
        private var frames: [(mapping: Bool, expectingKey: Bool)] = []

        /// Whether the node that starts now is a mapping key; moves the innermost mapping to its next slot.
        mutating func nextNodeIsKey() -> Bool {
            guard let last = frames.indices.last, frames[last].mapping else { return false }
            let isKey = frames[last].expectingKey
            frames[last].expectingKey.toggle()
            return isKey
        }

        mutating func push(mapping: Bool) { frames.append((mapping, true)) }

        mutating func pop() { _ = frames.popLast() }
    }
}
