import CJansson
import Manifests

#if canImport(Glibc)
import Glibc
#endif

// What the API server sends (watch events, list pages, Status bodies), split by jansson into the
// pieces the watcher needs; each object stays JSON for the manifest decoder. Every piece is
// checked against the resource it was asked of before the watcher keeps it: a response of the
// wrong kind, a Status where a list belongs, an object without its identity is refused here
// (WireError), never taken for an empty or different set of objects.

/// The resource a response is checked against: the list is `<kind>List` of `apiVersion`, its
/// items and watch objects are `kind` (when they say), named, namespaced or not as the kind is.
public struct WireResource: Sendable, Hashable {
    public var kind: String
    public var apiVersion: String
    /// Namespaced kinds' objects have a metadata.namespace; cluster-scoped ones (Node, the
    /// balancing.elf.io policies) have none.
    public var namespaced: Bool

    public init(kind: String, apiVersion: String, namespaced: Bool) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespaced = namespaced
    }
}

/// A Kubernetes Status (what errors carry, in an HTTP error body, a watch ERROR event, or
/// wrongly in a 200 where a list belongs).
public struct WireStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: Int?
    public var reason: String?
    public var message: String?

    public var description: String {
        var parts: [String] = []
        if let code { parts.append("code \(code)") }
        if let reason, !reason.isEmpty { parts.append("reason \(shown(reason))") }
        if let message, !message.isEmpty { parts.append(shown(message, limit: 300)) }
        return parts.isEmpty ? "no code, reason or message" : parts.joined(separator: ", ")
    }

    /// The Status in `body`, if it is one (kind Status, or an object with a code and a message as
    /// aggregated API servers sometimes send without a kind).
    public static func parse(_ body: [UInt8]) -> WireStatus? {
        guard let root = try? WireJSON.load(body, what: "Status"), let r = root.pointer else { return nil }
        defer { cjansson_decref(r) }
        return WireJSON.status(r, requireKind: false)
    }
}

/// Why a response from the API server was refused.
public struct WireError: Error, Sendable, CustomStringConvertible {
    public enum Problem: String, Sendable {
        /// Not JSON, or not the shape of a list page or watch event.
        case malformed
        /// A Status where a list or an object belongs.
        case statusObject = "status_object"
        /// A list or object of another kind.
        case wrongKind = "wrong_kind"
        case wrongAPIVersion = "wrong_api_version"
        /// An object without a usable metadata.name / metadata.namespace for its kind's scope.
        case badIdentity = "bad_identity"
        case missingResourceVersion = "missing_resource_version"
        /// An object larger than the caller's cap.
        case tooLarge = "too_large"
    }

    public var problem: Problem
    public var message: String
    /// For `.statusObject`: the Status.
    public var status: WireStatus?

    public init(_ problem: Problem, _ message: String, status: WireStatus? = nil) {
        self.problem = problem
        self.message = message
        self.status = status
    }

    public var description: String { message }
}

// Values from the server are quoted in messages by `shown` (Manifests, Validation.swift).

/// jansson, once, for the wire types.
enum WireJSON {
    /// An owned jansson value (the caller decrefs `pointer`).
    struct Root { var pointer: UnsafeMutablePointer<json_t>? }

    static func load(_ bytes: [UInt8], what: String) throws(WireError) -> Root {
        var error = json_error_t()
        let root: UnsafeMutablePointer<json_t>? = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, Int(JSON_REJECT_DUPLICATES), &error)
        }
        guard let root else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw WireError(.malformed, "\(what) is not JSON: \(text) at line \(error.line), column \(error.column)")
        }
        return Root(pointer: root)
    }

    static func string(_ object: UnsafeMutablePointer<json_t>?, _ key: String) -> String? {
        guard let object, object.pointee.type == JSON_OBJECT, let v = json_object_get(object, key), let s = json_string_value(v) else { return nil }
        return String(cString: s)
    }

    static func typeName(_ v: UnsafeMutablePointer<json_t>) -> String {
        switch v.pointee.type {
        case JSON_OBJECT: "an object"
        case JSON_ARRAY: "an array"
        case JSON_STRING: "a string"
        case JSON_INTEGER, JSON_REAL: "a number"
        case JSON_TRUE, JSON_FALSE: "a boolean"
        default: "null"
        }
    }

    /// An object's bytes as kept: trimmed from this tree for a kind kept trimmed (Pods, Nodes),
    /// else whole; and the size of the object as sent, which the cap applies to. `within` bounds
    /// that size (the line or body it came in): under the cap, a trimmed object is not dumped whole
    /// only to be measured (its size is then reported as `within`).
    /// `sent`: the object's size as sent, when wire_select measured it (the tree is then its
    /// selection, not the whole object).
    static func keptObject(_ object: UnsafeMutablePointer<json_t>, kind: String?, within: Int, cap: Int, sent: Int? = nil) -> (kept: [UInt8], size: Int) {
        let trimmed = kind.flatMap { trimmedDump(object, kind: $0) }
        if let sent { return (trimmed ?? dump(object), sent) }
        if let trimmed, within <= cap { return (trimmed, within) }
        let whole = dump(object)
        return (trimmed ?? whole, whole.count)
    }

    static func dump(_ object: UnsafeMutablePointer<json_t>) -> [UInt8] {
        guard let dumped = json_dumps(object, Int(JSON_COMPACT)) else { return [] }
        defer { free(dumped) }
        return Array(UnsafeBufferPointer(start: UnsafeRawPointer(dumped).assumingMemoryBound(to: UInt8.self), count: strlen(dumped)))
    }

    /// The Status fields of an object; nil when `requireKind` and its kind is not Status, or
    /// when it has neither a code nor a message.
    static func status(_ object: UnsafeMutablePointer<json_t>, requireKind: Bool) -> WireStatus? {
        guard object.pointee.type == JSON_OBJECT else { return nil }
        let kind = string(object, "kind")
        if requireKind && kind != "Status" { return nil }
        var code: Int?
        if let c = json_object_get(object, "code"), c.pointee.type == JSON_INTEGER { code = Int(json_integer_value(c)) }
        let s = WireStatus(code: code, reason: string(object, "reason"), message: string(object, "message"))
        if kind != "Status" && (s.code == nil || s.message == nil) { return nil }
        return s
    }

    /// Checks a list item or watch object against `resource` and gives it the kind and
    /// apiVersion when it has none (list items of built-in kinds arrive without them), so that it
    /// decodes as a manifest on its own. `place` names it in errors ("items[3]").
    static func checkObject(_ object: UnsafeMutablePointer<json_t>, _ resource: WireResource, place: String)
        throws(WireError) -> (namespace: String, name: String, resourceVersion: String) {
        guard object.pointee.type == JSON_OBJECT else {
            throw WireError(.malformed, "\(place) is \(typeName(object)), not an object")
        }
        if let k = json_object_get(object, "kind") {
            guard let s = json_string_value(k) else { throw WireError(.malformed, "\(place): kind is \(typeName(k)), not a string") }
            let kind = String(cString: s)
            if kind == "Status" {
                let st = status(object, requireKind: true)
                throw WireError(.statusObject, "\(place) is a Status (\(st?.description ?? "")), not a \(resource.kind)", status: st)
            }
            guard kind == resource.kind else { throw WireError(.wrongKind, "\(place) is a \(shown(kind)), not a \(resource.kind)") }
        } else {
            json_object_set_new(object, "kind", json_string(resource.kind))
        }
        let metadata = json_object_get(object, "metadata")
        guard let metadata, metadata.pointee.type == JSON_OBJECT else {
            throw WireError(.badIdentity, "\(place) (a \(resource.kind)) has no metadata object")
        }
        guard let n = json_object_get(metadata, "name") else { throw WireError(.badIdentity, "\(place) (a \(resource.kind)) has no metadata.name") }
        guard let ns = json_string_value(n) else {
            throw WireError(.badIdentity, "\(place) (a \(resource.kind)): metadata.name is \(typeName(n)), not a string")
        }
        let name = String(cString: ns)
        guard !name.isEmpty else { throw WireError(.badIdentity, "\(place) (a \(resource.kind)) has an empty metadata.name") }
        var namespace = ""
        if let v = json_object_get(metadata, "namespace"), v.pointee.type != JSON_NULL {
            guard let s = json_string_value(v) else {
                throw WireError(.badIdentity, "\(place) (\(resource.kind) \(shown(name))): metadata.namespace is \(typeName(v)), not a string")
            }
            namespace = String(cString: s)
        }
        let who = "\(place) (\(resource.kind) \(shown(namespace.isEmpty ? name : namespace + "/" + name)))"
        if resource.namespaced && namespace.isEmpty {
            throw WireError(.badIdentity, "\(who) has no metadata.namespace, but \(resource.kind) is a namespaced kind")
        }
        if !resource.namespaced && !namespace.isEmpty {
            throw WireError(.badIdentity, "\(who) has metadata.namespace \(shown(namespace)), but \(resource.kind) is cluster-scoped")
        }
        if let v = json_object_get(object, "apiVersion") {
            let version = json_string_value(v).map { String(cString: $0) }
            guard version == resource.apiVersion else {
                throw WireError(.wrongAPIVersion, "\(who) has apiVersion \(version.map { shown($0) } ?? typeName(v)), not \(resource.apiVersion)")
            }
        } else {
            json_object_set_new(object, "apiVersion", json_string(resource.apiVersion))
        }
        guard let rv = string(metadata, "resourceVersion"), !rv.isEmpty else {
            throw WireError(.missingResourceVersion, "\(who) has no metadata.resourceVersion")
        }
        return (namespace, name, rv)
    }
}

/// One event of a Kubernetes watch stream (`{"type":"ADDED","object":{…}}`), split by jansson:
/// the event's type, the object's own JSON bytes (for the manifest decoder), its
/// `metadata.resourceVersion`, and for ERROR events the Status (410: relist).
public struct RawWatchEvent: Sendable, Equatable {
    public static let types: Set<String> = ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]

    public var type: String
    public var object: [UInt8]
    public var resourceVersion: String?
    public var code: Int?
    /// The object's metadata.namespace ("" for cluster-scoped objects) and metadata.name.
    public var namespace: String = ""
    public var name: String?
    /// ERROR: the Status the event carries.
    public var status: WireStatus?

    /// The event as sent, unchecked (tests and tools that read any stream).
    public static func parse(_ line: [UInt8]) throws(SyntaxError) -> RawWatchEvent {
        do {
            return try parse(line, expecting: nil)
        } catch {
            throw SyntaxError(file: "watch event", line: 1, column: 1, message: error.message)
        }
    }

    /// The event, checked against `resource` when given: ADDED, MODIFIED and DELETED carry an
    /// object of that kind and apiVersion (when it says) with its identity and resourceVersion;
    /// a BOOKMARK carries a resourceVersion; an ERROR's Status is read for its code and reason.
    /// An object larger than `maxObjectBytes` is refused.
    public static func parse(_ line: [UInt8], expecting resource: WireResource?, maxObjectBytes: Int = .max) throws(WireError) -> RawWatchEvent {
        let root: WireJSON.Root
        let sent: Int?
        if let selection = resource.flatMap({ WireSelection.event(kind: $0.kind) }),
           let picked = try selection.select(line, what: "the watch event") {
            root = try WireJSON.load(picked.json, what: "the watch event")
            sent = picked.sizes.first
        } else {
            root = try WireJSON.load(line, what: "the watch event")
            sent = nil
        }
        guard let r = root.pointer else { throw WireError(.malformed, "an empty watch event") }
        defer { cjansson_decref(r) }
        guard r.pointee.type == JSON_OBJECT else { throw WireError(.malformed, "the watch event is \(WireJSON.typeName(r)), not an object") }
        guard let type = WireJSON.string(r, "type") else {
            if let st = WireJSON.status(r, requireKind: true) {
                throw WireError(.statusObject, "the watch stream carries a bare Status (\(st)), not an event", status: st)
            }
            throw WireError(.malformed, "no \"type\" string in the watch event")
        }
        guard let object = json_object_get(r, "object"), object.pointee.type == JSON_OBJECT else {
            throw WireError(.malformed, "no \"object\" in the \(shown(type)) event")
        }
        let metadata = json_object_get(object, "metadata")
        var event = RawWatchEvent(type: type, object: [], resourceVersion: WireJSON.string(metadata, "resourceVersion"), code: nil,
                                  namespace: WireJSON.string(metadata, "namespace") ?? "", name: WireJSON.string(metadata, "name"))
        if type == "ERROR" {
            let st = WireJSON.status(object, requireKind: false) ?? WireStatus(code: nil, reason: nil, message: nil)
            event.status = st
            event.code = st.code
        } else if let resource {
            guard types.contains(type) else { throw WireError(.malformed, "unknown watch event type \(shown(type))") }
            if type == "BOOKMARK" {
                if let k = WireJSON.string(object, "kind"), k != resource.kind {
                    throw WireError(.wrongKind, "the BOOKMARK object is a \(shown(k)), not a \(resource.kind)")
                }
                guard event.resourceVersion.map({ !$0.isEmpty }) ?? false else {
                    throw WireError(.missingResourceVersion, "the BOOKMARK has no metadata.resourceVersion")
                }
            } else {
                let id = try WireJSON.checkObject(object, resource, place: "the \(type) object")
                (event.namespace, event.name, event.resourceVersion) = (id.namespace, id.name, id.resourceVersion)
            }
        }
        let kind = type == "ERROR" || type == "BOOKMARK" ? nil : resource?.kind
        let (kept, size) = WireJSON.keptObject(object, kind: kind, within: line.count, cap: maxObjectBytes, sent: sent)
        if size > maxObjectBytes {
            let who = event.name.map { " (\(shown(event.namespace.isEmpty ? $0 : event.namespace + "/" + $0)))" } ?? ""
            throw WireError(.tooLarge, "the \(type) object\(who) is \(size) bytes, more than the object cap of \(maxObjectBytes)")
        }
        event.object = kept
        return event
    }
}

/// One page of a Kubernetes list (`{"kind":"ServiceList","apiVersion":"v1","metadata":
/// {"resourceVersion":…,"continue":…},"items":[…]}`), split by jansson and checked: the list is
/// `<kind>List` of the resource's apiVersion (a Status, or a list of another kind, is refused,
/// never read as an empty or foreign list), it has a resourceVersion, `items` is an array of
/// objects each checked as `WireJSON.checkObject` says. `"items": null` is read as empty: API
/// servers of some releases sent it for empty lists (kubernetes#39822, #98022).
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

    public static func parse(_ body: [UInt8], expecting resource: WireResource, maxObjectBytes: Int = .max) throws(WireError) -> RawListPage {
        let listKind = resource.kind + "List"
        let root: WireJSON.Root
        let sent: [Int]?
        if let selection = WireSelection.list(kind: resource.kind), let picked = try selection.select(body, what: "the \(listKind)") {
            root = try WireJSON.load(picked.json, what: "the \(listKind)")
            sent = picked.sizes
        } else {
            root = try WireJSON.load(body, what: "the \(listKind)")
            sent = nil
        }
        guard let r = root.pointer else { throw WireError(.malformed, "an empty response where a \(listKind) belongs") }
        defer { cjansson_decref(r) }
        guard r.pointee.type == JSON_OBJECT else { throw WireError(.malformed, "the response is \(WireJSON.typeName(r)), not a \(listKind)") }
        let kind = WireJSON.string(r, "kind")
        if kind == "Status" {
            let st = WireJSON.status(r, requireKind: true)
            throw WireError(.statusObject, "the response is a Status (\(st?.description ?? "")), not a \(listKind)", status: st)
        }
        guard kind == listKind else {
            throw WireError(.wrongKind, "the response is \(kind.map { "a " + shown($0) } ?? "an object without a kind"), not a \(listKind)")
        }
        let version = WireJSON.string(r, "apiVersion")
        guard version == resource.apiVersion else {
            throw WireError(.wrongAPIVersion, "the \(listKind) has apiVersion \(version.map { shown($0) } ?? "(none)"), not \(resource.apiVersion)")
        }
        let metadata = json_object_get(r, "metadata")
        guard let rv = WireJSON.string(metadata, "resourceVersion"), !rv.isEmpty else {
            throw WireError(.missingResourceVersion, "the \(listKind) has no metadata.resourceVersion")
        }
        guard let list = json_object_get(r, "items") else { throw WireError(.malformed, "the \(listKind) has no items") }
        var items: [Item] = []
        if list.pointee.type != JSON_NULL {
            guard list.pointee.type == JSON_ARRAY else { throw WireError(.malformed, "the \(listKind)'s items is \(WireJSON.typeName(list)), not an array") }
            items.reserveCapacity(json_array_size(list))
            for i in 0..<json_array_size(list) {
                guard let item = json_array_get(list, i) else { continue }
                let id = try WireJSON.checkObject(item, resource, place: "items[\(i)]")
                let (kept, size) = WireJSON.keptObject(item, kind: resource.kind, within: body.count, cap: maxObjectBytes,
                                                       sent: sent.flatMap { i < $0.count ? $0[i] : nil })
                if size > maxObjectBytes {
                    throw WireError(.tooLarge, "items[\(i)] (\(resource.kind) \(shown(id.namespace.isEmpty ? id.name : id.namespace + "/" + id.name))) is \(size) bytes, more than the object cap of \(maxObjectBytes)")
                }
                items.append(Item(namespace: id.namespace, name: id.name, object: kept))
            }
        }
        var next: String?
        if let c = json_object_get(metadata, "continue"), c.pointee.type != JSON_NULL {
            guard let s = json_string_value(c) else { throw WireError(.malformed, "the \(listKind)'s metadata.continue is \(WireJSON.typeName(c)), not a string") }
            next = s.pointee == 0 ? nil : String(cString: s)
        }
        return RawListPage(items: items, resourceVersion: rv, continueToken: next)
    }
}

/// The `message` of a Kubernetes Status body (what an error response carries), if it is one.
public func kubernetesStatusMessage(_ body: [UInt8]) -> String? {
    WireStatus.parse(body)?.message
}
