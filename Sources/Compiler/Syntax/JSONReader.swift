import CJansson

#if canImport(Glibc)
import Glibc
#endif

extension ManifestReader {
    /// Parses one or more concatenated JSON values (a single document, NDJSON, or several
    /// `kubectl get -o json` outputs in one file) into the same arena as YAML.
    public static func parseJSON(_ bytes: [UInt8], file: String) throws(SyntaxError) -> ManifestTree {
        var builder = TreeBuilder(file: file, yamlSemantics: false, inputSize: bytes.count)
        let failure: SyntaxError? = bytes.withUnsafeBufferPointer { buffer in
            JSONValueReader.run(buffer, &builder)
        }
        if let failure { throw failure }
        return builder.finish()
    }
}

private enum JSONValueReader {
    /// EOF check off and `position` let several concatenated values be read one by one; any
    /// top-level value is accepted so NDJSON of scalars still parses; NUL is allowed inside
    /// strings because the arena keeps raw bytes (YAML's "\0" escape produces the same).
    static let flags = JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL

    static func run(_ input: UnsafeBufferPointer<UInt8>, _ builder: inout TreeBuilder) -> SyntaxError? {
        guard let base = input.baseAddress else { return nil }
        var offset = 0
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
                let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if error.line <= 0 {
                    return SyntaxError(file: builder.file, line: 0, column: 0, message: text)
                }
                // jansson counts from the start of the value it was given; errors are rare, so
                // the value's own position in the file is only computed here.
                let (line, column) = lineAndColumn(of: offset, in: input)
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
                let (line, column) = lineAndColumn(of: offset, in: input)
                return SyntaxError(file: builder.file, line: line, column: column, message: "JSON parser made no progress")
            }
            offset += consumed
        }
    }

    /// 1-based line and column (in characters, as jansson counts them) of a byte offset.
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

/// One event of a Kubernetes watch stream (`{"type":"ADDED","object":{…}}`), split by jansson:
/// the event's type, the object's own JSON bytes (for the manifest decoder), its
/// `metadata.resourceVersion`, and for ERROR events the Status `code` (410: relist).
public struct RawWatchEvent: Sendable, Equatable {
    public var type: String
    public var object: [UInt8]
    public var resourceVersion: String?
    public var code: Int?
    /// The object's metadata.namespace ("" for cluster-scoped objects) and metadata.name.
    public var namespace: String = ""
    public var name: String?

    public static func parse(_ line: [UInt8]) throws(SyntaxError) -> RawWatchEvent {
        var error = json_error_t()
        let root: UnsafeMutablePointer<json_t>? = line.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, Int(JSON_REJECT_DUPLICATES), &error)
        }
        guard let root else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw SyntaxError(file: "watch event", line: Int(error.line), column: Int(error.column), message: text)
        }
        defer { cjansson_decref(root) }
        func string(_ object: UnsafeMutablePointer<json_t>?, _ key: String) -> String? {
            guard let object, let v = json_object_get(object, key), let s = json_string_value(v) else { return nil }
            return String(cString: s)
        }
        guard let type = string(root, "type") else {
            throw SyntaxError(file: "watch event", line: 1, column: 1, message: "no \"type\" in the event")
        }
        guard let object = json_object_get(root, "object"), object.pointee.type == JSON_OBJECT else {
            throw SyntaxError(file: "watch event", line: 1, column: 1, message: "no \"object\" in the \(type) event")
        }
        var bytes: [UInt8] = []
        if let dumped = json_dumps(object, Int(JSON_COMPACT)) {
            bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(dumped).assumingMemoryBound(to: UInt8.self), count: strlen(dumped)))
            free(dumped)
        }
        let metadata = json_object_get(object, "metadata")
        let rv = string(metadata, "resourceVersion")
        var code: Int?
        if let c = json_object_get(object, "code"), c.pointee.type == JSON_INTEGER { code = Int(json_integer_value(c)) }
        return RawWatchEvent(type: type, object: bytes, resourceVersion: rv, code: code, namespace: string(metadata, "namespace") ?? "",
                             name: string(metadata, "name"))
    }
}

/// One page of a Kubernetes list (`{"kind":"ServiceList","metadata":{"resourceVersion":…,
/// "continue":…},"items":[…]}`), split by jansson. Items arrive without kind and apiVersion (as
/// on the wire); they are given the list's, so each item decodes as a manifest on its own.
public struct RawListPage: Sendable {
    public struct Item: Sendable {
        public var namespace: String
        public var name: String
        public var object: [UInt8]
    }

    public var items: [Item]
    public var resourceVersion: String
    /// The token for the next page; nil on the last.
    public var continueToken: String?

    public static func parse(_ body: [UInt8], itemKind: String, apiVersion: String) throws(SyntaxError) -> RawListPage {
        var error = json_error_t()
        let root: UnsafeMutablePointer<json_t>? = body.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, 0, &error)
        }
        guard let root else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw SyntaxError(file: "\(itemKind) list", line: Int(error.line), column: Int(error.column), message: text)
        }
        defer { cjansson_decref(root) }
        func string(_ object: UnsafeMutablePointer<json_t>?, _ key: String) -> String? {
            guard let object, let v = json_object_get(object, key), let s = json_string_value(v) else { return nil }
            return String(cString: s)
        }
        let metadata = json_object_get(root, "metadata")
        guard let rv = string(metadata, "resourceVersion") else {
            throw SyntaxError(file: "\(itemKind) list", line: 1, column: 1, message: "no metadata.resourceVersion in the list")
        }
        var items: [Item] = []
        if let list = json_object_get(root, "items"), list.pointee.type == JSON_ARRAY {
            for i in 0..<json_array_size(list) {
                guard let item = json_array_get(list, i), item.pointee.type == JSON_OBJECT else { continue }
                json_object_set_new(item, "kind", json_string(itemKind))
                json_object_set_new(item, "apiVersion", json_string(apiVersion))
                let meta = json_object_get(item, "metadata")
                guard let name = string(meta, "name"), let dumped = json_dumps(item, Int(JSON_COMPACT)) else { continue }
                let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(dumped).assumingMemoryBound(to: UInt8.self), count: strlen(dumped)))
                free(dumped)
                items.append(Item(namespace: string(meta, "namespace") ?? "", name: name, object: bytes))
            }
        }
        let next = string(metadata, "continue").flatMap { $0.isEmpty ? nil : $0 }
        return RawListPage(items: items, resourceVersion: rv, continueToken: next)
    }
}

/// The `message` of a Kubernetes Status body (what an error response carries), if it is one.
public func kubernetesStatusMessage(_ body: [UInt8]) -> String? {
    var error = json_error_t()
    let root: UnsafeMutablePointer<json_t>? = body.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return nil }
        return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, 0, &error)
    }
    guard let root else { return nil }
    defer { cjansson_decref(root) }
    guard let m = json_object_get(root, "message"), let s = json_string_value(m) else { return nil }
    return String(cString: s)
}

/// A Pod reduced to what the compiler reads (metadata's identity, labels and deletion; the node,
/// host network and container ports; phase, Ready and addresses): a watcher keeps every Pod of
/// the cluster, and a Pod's managedFields, env and volumes are most of its bytes. Other JSON is
/// returned unchanged.
public func trimPodJSON(_ object: [UInt8]) -> [UInt8] {
    var error = json_error_t()
    let root: UnsafeMutablePointer<json_t>? = object.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return nil }
        return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, 0, &error)
    }
    guard let root, root.pointee.type == JSON_OBJECT else {
        if let root { cjansson_decref(root) }
        return object
    }
    defer { cjansson_decref(root) }
    /// A new object with only `keys` of `from` (values shared, reference-counted).
    func pick(_ from: UnsafeMutablePointer<json_t>?, _ keys: [String]) -> UnsafeMutablePointer<json_t>? {
        guard let from, from.pointee.type == JSON_OBJECT, let out = json_object() else { return nil }
        for k in keys {
            if let v = json_object_get(from, k) { json_object_set(out, k, v) }
        }
        return out
    }
    /// The same array with each element reduced by `body`.
    func mapArray(_ array: UnsafeMutablePointer<json_t>?, _ body: (UnsafeMutablePointer<json_t>) -> UnsafeMutablePointer<json_t>?) -> UnsafeMutablePointer<json_t>? {
        guard let array, array.pointee.type == JSON_ARRAY, let out = json_array() else { return nil }
        for i in 0..<json_array_size(array) {
            if let e = json_array_get(array, i), let m = body(e) { json_array_append_new(out, m) }
        }
        return out
    }
    guard let out = json_object() else { return object }
    defer { cjansson_decref(out) }
    for k in ["kind", "apiVersion"] { if let v = json_object_get(root, k) { json_object_set(out, k, v) } }
    if let m = pick(json_object_get(root, "metadata"), ["name", "namespace", "labels", "annotations", "uid", "resourceVersion",
                                                        "creationTimestamp", "deletionTimestamp"]) {
        json_object_set_new(out, "metadata", m)
    }
    let container: (UnsafeMutablePointer<json_t>) -> UnsafeMutablePointer<json_t>? = { pick($0, ["name", "ports", "restartPolicy"]) }
    if let spec = json_object_get(root, "spec"), let s = pick(spec, ["nodeName", "hostNetwork"]) {
        if let c = mapArray(json_object_get(spec, "containers"), container) { json_object_set_new(s, "containers", c) }
        if let c = mapArray(json_object_get(spec, "initContainers"), container) { json_object_set_new(s, "initContainers", c) }
        json_object_set_new(out, "spec", s)
    }
    if let status = json_object_get(root, "status"), let s = pick(status, ["phase", "podIP", "podIPs"]) {
        if let c = mapArray(json_object_get(status, "conditions"), { pick($0, ["type", "status"]) }) { json_object_set_new(s, "conditions", c) }
        json_object_set_new(out, "status", s)
    }
    guard let dumped = json_dumps(out, Int(JSON_COMPACT)) else { return object }
    defer { free(dumped) }
    return Array(UnsafeBufferPointer(start: UnsafeRawPointer(dumped).assumingMemoryBound(to: UInt8.self), count: strlen(dumped)))
}
