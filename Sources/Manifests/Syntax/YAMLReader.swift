import CYAML

/// Entry points of the syntax layer.
public enum ManifestReader {
    /// Chooses by extension (.json → JSON; .yaml/.yml → YAML); for other extensions, JSON if the
    /// first non-whitespace byte is `{` or `[`, else YAML.
    public static func parse(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        isJSON(bytes, file: file) ? try parseJSON(bytes, file: file) : try parseYAML(bytes, file: file)
    }

    /// The format decision of `parse`, exposed so callers that split a file before parsing agree
    /// with it. Sniffing exists for stdin and extension-less files: kubectl's JSON always opens
    /// with `{` or `[`, and its YAML never does.
    public static func isJSON(_ bytes: [UInt8], file: String) -> Bool {
        let lower = file.lowercased()
        if lower.hasSuffix(".json") { return true }
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") { return false }
        for b in bytes.starts(with: ManifestSplitter.utf8BOM) ? bytes.dropFirst(3) : bytes[...] {
            switch b {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                return true
            default:
                return false
            }
        }
        return false
    }

    /// Parses a YAML stream with libyaml's event API, which (unlike its document API) lets the
    /// arena be filled directly and keeps every node's start mark.
    /// kubectl's block YAML is read by YAMLFastReader; anything else, errors included, by
    /// libyaml, which builds the same tree or reports the problem.
    public static func parseYAML(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        try parseYAML(bytes[...], file: file)
    }

    /// `parseYAML` of a piece of a larger buffer, without copying it when YAMLFastReader reads it.
    static func parseYAML(_ bytes: ArraySlice<UInt8>, file: String) throws(SyntaxError) -> ManifestTree {
        if let tree = bytes.withUnsafeBufferPointer({ YAMLFastReader.parse($0, file: file) }) { return tree }
        return try parseYAMLWithLibyaml(Array(bytes), file: file)
    }

    /// libyaml alone: what YAMLFastReader's trees are held against in the tests.
    static func parseYAMLWithLibyaml(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        try TreeBuilder.build(bytes, file: file, yamlSemantics: true, YAMLEventReader.run)
    }

    /// 1-based line and column (in characters, as jansson and libyaml count them) of a byte
    /// offset, for the readers' errors.
    static func lineAndColumn(of offset: Int, in input: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1, column = 1
        for i in 0 ..< min(offset, input.count) {
            let b = input[i]
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}

private enum YAMLEventReader {
    static func run(_ input: UnsafeBufferPointer<UInt8>, _ builder: inout TreeBuilder) -> SyntaxError? {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            return SyntaxError(file: builder.file, line: 0, column: 0, message: "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(parser) }

        // libyaml asserts on a NULL input even for length 0, so give it a valid empty buffer.
        var empty: UInt8 = 0
        let fallbackFailure: SyntaxError? = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            let base = input.baseAddress ?? UnsafePointer(emptyPointer)
            yaml_parser_set_input_string(parser, base, input.count)
            var state = State()
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(parser, &event) == 1 else {
                    return parserError(parser, input, builder.file)
                }
                let type = event.type
                do throws(SyntaxError) {
                    try handle(&event, &builder, &state)
                } catch {
                    yaml_event_delete(&event)
                    return error
                }
                yaml_event_delete(&event)
                if type == YAML_STREAM_END_EVENT { return nil }
            }
        }
        return fallbackFailure
    }

    struct State {
        /// Anchors are scoped to their document.
        var anchors: [String: Int32] = [:]
    }

    @inline(__always)
    static func mark(_ m: yaml_mark_t) -> (UInt32, UInt32) {
        (UInt32(truncatingIfNeeded: m.line + 1), UInt32(truncatingIfNeeded: m.column + 1))
    }

    static func handle(_ event: inout yaml_event_t, _ builder: inout TreeBuilder, _ state: inout State) throws(SyntaxError) {
        let (line, column) = mark(event.start_mark)
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let start = builder.text.count
            if let value = scalar.value, scalar.length > 0 {
                builder.text.append(contentsOf: UnsafeBufferPointer(start: value, count: scalar.length))
            }
            var style: ScalarStyle = scalar.style == YAML_PLAIN_SCALAR_STYLE ? .plain : .quoted
            if let tag = scalar.tag {
                style = try CoreTag.scalarStyle(String(cString: tag), text: builder.text, start, builder.text.count - start,
                                                error: { builder.error(line, column, $0) })
            }
            let idx = try builder.addScalar(textStart: start, style: style, line: line, column: column)
            if let anchor = scalar.anchor { state.anchors[String(cString: anchor)] = idx }

        case YAML_SEQUENCE_START_EVENT:
            if let tag = event.data.sequence_start.tag {
                try CoreTag.check(String(cString: tag), container: .sequence, error: { builder.error(line, column, $0) })
            }
            let idx = try builder.beginContainer(.sequence, line: line, column: column)
            if let anchor = event.data.sequence_start.anchor { state.anchors[String(cString: anchor)] = idx }

        case YAML_MAPPING_START_EVENT:
            if let tag = event.data.mapping_start.tag {
                try CoreTag.check(String(cString: tag), container: .mapping, error: { builder.error(line, column, $0) })
            }
            let idx = try builder.beginContainer(.mapping, line: line, column: column)
            if let anchor = event.data.mapping_start.anchor { state.anchors[String(cString: anchor)] = idx }

        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            try builder.endContainer()

        case YAML_ALIAS_EVENT:
            let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
            guard let target = state.anchors[name] else {
                throw builder.error(line, column, "unknown anchor \(shown(name))")
            }
            if builder.isOpen(target) {
                throw builder.error(line, column, "alias \(shown(name)) refers to a node that contains it")
            }
            try builder.copySubtree(target, line: line, column: column)

        case YAML_DOCUMENT_START_EVENT:
            state.anchors.removeAll(keepingCapacity: true)

        case YAML_DOCUMENT_END_EVENT:
            builder.endDocument()

        default:
            break
        }
    }

    static func parserError(_ parser: UnsafeMutablePointer<yaml_parser_t>, _ input: UnsafeBufferPointer<UInt8>, _ file: String) -> SyntaxError {
        let p = parser.pointee
        var message = p.problem.map { String(cString: $0) } ?? "invalid YAML"
        switch p.error {
        case YAML_MEMORY_ERROR:
            return SyntaxError(file: file, line: 0, column: 0, message: "out of memory while parsing YAML")
        case YAML_READER_ERROR:
            // Reader (encoding) errors carry a byte offset rather than a mark.
            if p.problem_value >= 0 { message += " (byte 0x\(String(p.problem_value, radix: 16)))" }
            let (line, column) = ManifestReader.lineAndColumn(of: p.problem_offset, in: input)
            return SyntaxError(file: file, line: line, column: column, message: message)
        default:
            if let context = p.context {
                message += " (\(String(cString: context)) at \(p.context_mark.line + 1):\(p.context_mark.column + 1))"
            }
            return SyntaxError(file: file, line: Int(p.problem_mark.line) + 1,
                               column: Int(p.problem_mark.column) + 1, message: message)
        }
    }
}

/// Tags: only YAML's core schema (what kubectl's YAML path and JSON can express). Any other tag —
/// `!!binary`, `!!timestamp`, `!!set`, `!!python/…`, a local `!foo`, a `%TAG` shorthand for
/// another namespace — is refused at its position rather than silently read as text.
enum CoreTag {
    static let prefix = "tag:yaml.org,2002:"

    /// How a tagged scalar is typed: `!!str` and the non-specific `!` make it a string; `!!int`,
    /// `!!float`, `!!bool` and `!!null` make it a plain scalar, which must read as that type.
    static func scalarStyle(_ tag: String, text: [UInt8], _ start: Int, _ length: Int,
                            error: (String) -> SyntaxError) throws(SyntaxError) -> ScalarStyle {
        if tag == "!" { return .quoted }
        guard tag.hasPrefix(prefix) else { throw error("unsupported tag \(shownTag(tag)) (only the YAML core schema's tags are accepted: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)") }
        let name = tag.dropFirst(prefix.count)
        let fits: Bool
        switch name {
        case "str": return .quoted
        case "int": fits = ManifestTree.numberShape(text, start, length) == .integer
        case "float":
            fits = ManifestTree.numberShape(text, start, length) != .none
                || [".inf", "-.inf", "+.inf", ".nan", ".Inf", ".NaN", ".INF", ".NAN"].contains(String(decoding: text[start..<start + length], as: UTF8.self))
        case "bool": fits = ManifestTree.boolValue(text, start, length) != nil
        case "null": fits = ManifestTree.isNullText(text, start, length)
        case "map", "seq": throw error("tag \(shownTag(tag)) on a scalar")
        default: throw error("unsupported tag \(shownTag(tag)) (only the YAML core schema's tags are accepted: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)")
        }
        guard fits else {
            throw error("\(shown(String(decoding: text[start..<start + length], as: UTF8.self))) does not read as its tag \(shownTag(tag))")
        }
        return .plain
    }

    static func check(_ tag: String, container: NodeKind, error: (String) -> SyntaxError) throws(SyntaxError) {
        if tag == "!" { return }
        let expected = container == .mapping ? "map" : "seq"
        if tag == prefix + expected { return }
        if tag.hasPrefix(prefix), ["map", "seq", "str", "int", "float", "bool", "null"].contains(String(tag.dropFirst(prefix.count))) {
            throw error("tag \(shownTag(tag)) on a \(container == .mapping ? "mapping" : "sequence")")
        }
        throw error("unsupported tag \(shownTag(tag)) (only the YAML core schema's tags are accepted: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)")
    }

    /// `!!int` for core tags, the resolved tag otherwise (quoted, control characters escaped).
    static func shownTag(_ tag: String) -> String {
        tag.hasPrefix(prefix) ? "!!" + tag.dropFirst(prefix.count) : shown(tag, limit: 100)
    }
}
