import CJansson
import Manifests

#if canImport(Glibc)
import Glibc
#endif

/// An object of `kind` reduced to what the compiler reads (`keptFields(kind:)`: Pods and Nodes,
/// declared next to their decoders, which read nothing else): a watcher keeps every Pod and Node
/// of the cluster, most of their bytes are fields the compiler never reads, and an update of only
/// those leaves the kept bytes unchanged. Other kinds, and JSON that is not an object, are returned
/// unchanged.
public func trimmedJSON(_ object: [UInt8], kind: String) -> [UInt8] {
    guard keptFields(kind: kind) != nil else { return object }
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
    return trimmedDump(root, kind: kind) ?? object
}

/// A parsed object of `kind` reduced and dumped (compact); nil when the kind is kept whole or the
/// value is not the object its selection reduces. Lists and watch events are trimmed here, from
/// the tree their check already parsed: one parse per object.
func trimmedDump(_ object: UnsafeMutablePointer<json_t>, kind: String) -> [UInt8]? {
    guard let selection = keptFields(kind: kind), let out = reduced(object, selection) else { return nil }
    defer { cjansson_decref(out) }
    return WireJSON.dump(out)
}

/// A new object or array with only what `selection` keeps of `value` (kept values shared,
/// reference-counted); nil when `value` is not the object or array the selection reduces. The
/// depth is the declaration's, never the input's.
private func reduced(_ value: UnsafeMutablePointer<json_t>, _ selection: FieldSelection) -> UnsafeMutablePointer<json_t>? {
    switch selection.shape {
    case .whole:
        return nil
    case .object:
        guard value.pointee.type == JSON_OBJECT, let out = json_object() else { return nil }
        for (name, member) in selection.members {
            guard let v = json_object_get(value, name) else { continue }
            if member.shape == .whole {
                json_object_set(out, name, v)
            } else if let r = reduced(v, member) {
                json_object_set_new(out, name, r)
            }
        }
        return out
    case .array:
        let element = selection.element
        guard value.pointee.type == JSON_ARRAY, let out = json_array() else { return nil }
        for i in 0..<json_array_size(value) {
            guard let e = json_array_get(value, i) else { continue }
            if element.shape == .whole {
                json_array_append(out, e)
            } else if let r = reduced(e, element) {
                json_array_append_new(out, r)
            }
        }
        return out
    }
}
