import CJansson

#if canImport(Glibc)
import Glibc
#endif

// What the API server sends (watch events, list pages, Status bodies), split by jansson into the
// pieces the watcher needs; each object stays JSON for the manifest decoder.

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
