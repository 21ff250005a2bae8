import Compiler
import KubeAPI
import Manifests

/// What the API watcher's compile loop keeps of every object: the bytes it last decoded and what
/// they decoded to. A change decodes only the objects whose kept bytes changed; a full compile
/// builds its snapshot from what is kept and decodes nothing again.
struct DecodedObjects {
    struct Entry {
        var bytes: [UInt8]
        var file: DecodedFile
    }

    private(set) var kinds: [String: [KindStore.Key: Entry]] = [:]

    /// The `dirty` keys whose bytes in the stores are not the ones kept (a relist that changed
    /// nothing, an event undone before the loop saw it: no change), with their bytes now (nil:
    /// gone). Cheap: taken under the stores' lock; `update` decodes outside it.
    func pending(_ dirty: [String: Set<KindStore.Key>], in stores: [String: KindStore]) -> [Pending] {
        var out: [Pending] = []
        for kind in dirty.keys.sorted() {
            for key in (dirty[kind] ?? []).sorted() {
                let bytes = stores[kind]?.objects[key]
                if bytes == kinds[kind]?[key]?.bytes { continue }
                out.append(Pending(kind: kind, key: key, bytes: bytes))
            }
        }
        return out
    }

    struct Pending {
        var kind: String
        var key: KindStore.Key
        var bytes: [UInt8]?
    }

    /// Decodes what changed (on every core), keeps it, and returns the changes.
    mutating func update(_ changed: [Pending]) -> [Change] {
        var contents: [(path: String, bytes: [UInt8])] = []
        var decodedAt: [Int] = []
        for (i, c) in changed.enumerated() {
            guard let bytes = c.bytes else { continue }
            contents.append((KindStore.manifestPath(c.kind, c.key), bytes))
            decodedAt.append(i)
        }
        var files = [DecodedFile?](repeating: nil, count: changed.count)
        for (k, f) in InputLoader.decodeEach(contents).enumerated() { files[decodedAt[k]] = f }
        var out: [Change] = []
        out.reserveCapacity(changed.count)
        for (i, c) in changed.enumerated() {
            if let bytes = c.bytes, let file = files[i] {
                kinds[c.kind, default: [:]][c.key] = Entry(bytes: bytes, file: file)
            } else {
                kinds[c.kind]?[c.key] = nil
            }
            out.append(Change(kind: c.kind, key: c.key, file: files[i]))
        }
        return out
    }

    /// Everything kept, as one snapshot (kinds and keys in order: the same input as a compile of
    /// the stores' manifests).
    func snapshot() throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        var files: [DecodedFile] = []
        for kind in kinds.keys.sorted() {
            guard let entries = kinds[kind] else { continue }
            for key in entries.keys.sorted() { if let e = entries[key] { files.append(e.file) } }
        }
        return try InputLoader.snapshot(of: files)
    }

    /// One object changed: its kind, its key, and what it decodes to now (nil: deleted).
    struct Change {
        var kind: String
        var key: KindStore.Key
        var file: DecodedFile?

        /// For the incremental compiler; nil when the object does not decode cleanly (a full
        /// compile reports why).
        var objectChange: ObjectChange? {
            guard let file else { return ObjectChange(kind: kind, namespace: key.namespace, name: key.name, objects: nil) }
            guard let objects = file.objects else { return nil }
            return ObjectChange(kind: kind, namespace: key.namespace, name: key.name, objects: objects)
        }
    }
}
