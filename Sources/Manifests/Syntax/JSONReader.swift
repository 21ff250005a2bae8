import CJansson

#if canImport(Glibc)
import Glibc
#endif

extension ManifestReader {
    /// Parses one or more concatenated JSON values (a single document, NDJSON, or several
    /// `kubectl get -o json` outputs in one file) into the same arena as YAML.
    /// The common case (one object, no reals) is read by JSONFastReader; anything else, errors
    /// included, by jansson, which builds the same tree or reports the problem.
    public static func parseJSON(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        try parseJSON(bytes[...], file: file)
    }

    /// jansson alone: what JSONFastReader's trees are held against in the tests.
    static func parseJSONWithJansson(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        try TreeBuilder.build(bytes, file: file, yamlSemantics: false, JSONValueReader.run)
    }

    /// `parseJSON` of a piece of a larger buffer, without copying it when JSONFastReader reads it.
    static func parseJSON(_ bytes: ArraySlice<UInt8>, file: String) throws(SyntaxError) -> ManifestTree {
        if let tree = bytes.withUnsafeBufferPointer({ JSONFastReader.parse($0, file: file) }) { return tree }
        return try parseJSONWithJansson(Array(bytes), file: file)
    }
}

private enum JSONValueReader {
    /// EOF check off and `position` let several concatenated values be read one by one; any
    /// top-level value is accepted so NDJSON of scalars still parses; NUL is allowed inside
    /// strings because the arena keeps raw bytes (YAML's "\0" escape produces the same).
    static let flags = JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL

    static func run(_ input: UnsafeBufferPointer<UInt8>, _ builder: inout TreeBuilder) -> SyntaxError? {
        guard let base = input.baseAddress else { return nil }
        // A UTF-8 byte order mark at the start, as kubectl accepts it.
        var offset = input.count >= 3 && input[0] == 0xEF && input[1] == 0xBB && input[2] == 0xBF ? 3 : 0
        while true {
            while offset < input.count {
                let b = input[offset]
                guard b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") else { break }
                offset += 1
            }
            if offset >= input.count { return nil }

            var error = json_error_t()
            let raw = UnsafeRawPointer(base + offset)
            guard let root = json_loadb(raw.assumingMemoryBound(to: CChar.self), input.count - offset, Int(flags), &error) else {
                var text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                // jansson stops at a raw NUL byte as if the input ended there.
                let at = offset + Int(error.position)
                if at < input.count, input[at] == 0 || (at > 0 && input[at - 1] == 0) {
                    text = "a NUL byte, which JSON does not allow outside strings (and inside them only as \\u0000)"
                }
                if error.line <= 0 {
                    return SyntaxError(file: builder.file, line: 0, column: 0, message: text)
                }
                // jansson counts from the start of the value it was given; errors are rare, so
                // the value's own position in the file is only computed here.
                let (line, column) = ManifestReader.lineAndColumn(of: offset, in: input)
                let errorLine = line + Int(error.line) - 1
                let errorColumn = error.line == 1 ? column + Int(error.column) - 1 : Int(error.column)
                return SyntaxError(file: builder.file, line: errorLine, column: max(errorColumn, 1), message: text)
            }
            do throws(SyntaxError) {
                try convert(root, &builder)
            } catch {
                cjansson_decref(root)
                return error
            }
            cjansson_decref(root)
            builder.endDocument()

            let consumed = Int(error.position)
            guard consumed > 0 else {
                let (line, column) = ManifestReader.lineAndColumn(of: offset, in: input)
                return SyntaxError(file: builder.file, line: line, column: column, message: "JSON parser made no progress")
            }
            offset += consumed
        }
    }

    /// Walks the jansson tree with an explicit stack; JSON nesting depth must not become call depth.
    static func convert(_ root: UnsafeMutablePointer<json_t>, _ builder: inout TreeBuilder) throws(SyntaxError) {
        struct Frame {
            var container: UnsafeMutablePointer<json_t>
            var isObject: Bool
            /// Next array index, or the object iterator (nil when exhausted).
            var index: Int
            var iterator: UnsafeMutableRawPointer?
        }
        var stack: [Frame] = []

        // Emits a value; containers are opened and pushed, to be filled by the loop below.
        func emit(_ value: UnsafeMutablePointer<json_t>, _ b: inout TreeBuilder) throws(SyntaxError) {
            switch Int(cjansson_type(value)) {
            case Int(JSON_OBJECT.rawValue):
                try b.beginContainer(.mapping, line: 0, column: 0)
                stack.append(Frame(container: value, isObject: true, index: 0, iterator: json_object_iter(value)))
            case Int(JSON_ARRAY.rawValue):
                try b.beginContainer(.sequence, line: 0, column: 0)
                stack.append(Frame(container: value, isObject: false, index: 0, iterator: nil))
            case Int(JSON_STRING.rawValue):
                let start = b.text.count
                let length = json_string_length(value)
                if length > 0, let chars = json_string_value(value) {
                    let raw = UnsafeRawPointer(chars).assumingMemoryBound(to: UInt8.self)
                    b.text.append(contentsOf: UnsafeBufferPointer(start: raw, count: length))
                }
                try b.addScalar(textStart: start, style: .jsonString, line: 0, column: 0)
            case Int(JSON_INTEGER.rawValue):
                let start = b.text.count
                b.appendDecimal(Int64(json_integer_value(value)))
                try b.addScalar(textStart: start, style: .jsonInteger, line: 0, column: 0)
            case Int(JSON_REAL.rawValue):
                let start = b.text.count
                // Swift's description is the shortest text that round-trips the double.
                b.text.append(contentsOf: "\(json_real_value(value))".utf8)
                try b.addScalar(textStart: start, style: .jsonReal, line: 0, column: 0)
            case Int(JSON_TRUE.rawValue):
                let start = b.text.count
                b.text.append(contentsOf: "true".utf8)
                try b.addScalar(textStart: start, style: .jsonTrue, line: 0, column: 0)
            case Int(JSON_FALSE.rawValue):
                let start = b.text.count
                b.text.append(contentsOf: "false".utf8)
                try b.addScalar(textStart: start, style: .jsonFalse, line: 0, column: 0)
            default:
                let start = b.text.count
                b.text.append(contentsOf: "null".utf8)
                try b.addScalar(textStart: start, style: .jsonNull, line: 0, column: 0)
            }
        }

        try emit(root, &builder)
        while !stack.isEmpty {
            let top = stack.count - 1
            let frame = stack[top]
            if frame.isObject {
                guard let iterator = frame.iterator, let keyChars = json_object_iter_key(iterator),
                      let value = json_object_iter_value(iterator) else {
                    stack.removeLast()
                    try builder.endContainer()
                    continue
                }
                stack[top].iterator = json_object_iter_next(frame.container, iterator)
                let start = builder.text.count
                let keyLength = json_object_iter_key_len(iterator)
                if keyLength > 0 {
                    let raw = UnsafeRawPointer(keyChars).assumingMemoryBound(to: UInt8.self)
                    builder.text.append(contentsOf: UnsafeBufferPointer(start: raw, count: keyLength))
                }
                try builder.addScalar(textStart: start, style: .jsonString, line: 0, column: 0)
                try emit(value, &builder)
            } else {
                guard frame.index < json_array_size(frame.container),
                      let value = json_array_get(frame.container, frame.index) else {
                    stack.removeLast()
                    try builder.endContainer()
                    continue
                }
                stack[top].index += 1
                try emit(value, &builder)
            }
        }
    }
}
