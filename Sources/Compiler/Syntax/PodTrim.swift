import CJansson

#if canImport(Glibc)
import Glibc
#endif

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
