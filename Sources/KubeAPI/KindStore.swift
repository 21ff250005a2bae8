/// The objects a watcher of the Kubernetes API holds for one kind: the reflector's state, as
/// client-go's keeps it. A list replaces everything and gives the version to watch from; watch
/// events apply in order; a BOOKMARK only moves the version; an ERROR with code 410 (the
/// version is too old) means the next step is a relist. After any sequence of lists, events and
/// reconnections, the objects equal the server's: what a full compile of them gives is what the
/// datapath gets.
public struct KindStore: Sendable {
    /// What the caller does next.
    public enum Next: Sendable, Equatable {
        /// Keep reading the watch (or reconnect it from `resourceVersion` if it ended).
        case watch
        /// List again (410 Gone, or a stream the store cannot follow).
        case relist
    }

    public struct Key: Hashable, Sendable, Comparable {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }

        public static func < (a: Key, b: Key) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
    }

    public let kind: String
    /// Each object's JSON as the server sent it.
    public private(set) var objects: [Key: [UInt8]] = [:]
    /// The version to resume the watch from; nil before the first list.
    public private(set) var resourceVersion: String?
    /// Bumped on every change of `objects`, so a caller can tell whether a recompile is due.
    public private(set) var generation = 0

    public init(kind: String) {
        self.kind = kind
    }

    /// The result of a (possibly paged, already concatenated) list: replaces every object.
    /// Returns the keys whose object changed, appeared or vanished (a relist after a 410 usually
    /// changes few of them, and the compiler follows only those).
    @discardableResult
    public mutating func replace(items: [(key: Key, object: [UInt8])], resourceVersion: String) -> Set<Key> {
        var next: [Key: [UInt8]] = [:]
        for item in items { next[item.key] = item.object }
        var changed = Set<Key>()
        for (k, v) in next where objects[k] != v { changed.insert(k) }
        for k in objects.keys where next[k] == nil { changed.insert(k) }
        if !changed.isEmpty {
            objects = next
            generation += 1
        }
        self.resourceVersion = resourceVersion
        return changed
    }

    /// Sets or removes one object, for a store that is the union of others (the Pods of several
    /// selectors); true when it changed.
    @discardableResult
    public mutating func set(_ key: Key, _ object: [UInt8]?) -> Bool {
        guard objects[key] != object else { return false }
        objects[key] = object
        generation += 1
        return true
    }

    /// One watch event.
    public mutating func apply(_ event: WatchStream.Event) -> Next {
        let key = event.name.map { Key(namespace: event.namespace, name: $0) }
        switch event.type {
        case .added, .modified:
            guard let key else { return .relist }
            if objects[key] != event.object {
                objects[key] = event.object
                generation += 1
            }
        case .deleted:
            guard let key else { return .relist }
            if objects.removeValue(forKey: key) != nil { generation += 1 }
        case .bookmark:
            break
        case .error:
            // 410: the version is gone from the server's window. Anything else: the stream is
            // no longer trustworthy either; a relist is always correct.
            return .relist
        }
        if let rv = event.resourceVersion { resourceVersion = rv }
        return .watch
    }
}

extension KindStore {
    /// The name an object of a store is compiled (and its diagnostics reported) under.
    public static func manifestPath(_ kind: String, _ key: Key) -> String { "\(kind)/\(key.namespace)/\(key.name).json" }

    /// Every object of these stores as manifests, in a stable order (the compiler's input).
    public static func manifests(_ stores: [KindStore]) -> [(path: String, bytes: [UInt8])] {
        var out: [(path: String, bytes: [UInt8])] = []
        for store in stores.sorted(by: { $0.kind < $1.kind }) {
            for key in store.objects.keys.sorted() {
                if let bytes = store.objects[key] { out.append((manifestPath(store.kind, key), bytes)) }
            }
        }
        return out
    }
}
