import CWireSelect
import Manifests

/// What jansson is given of a watch event or list page of a kind kept trimmed (Pods, Nodes):
/// wire_select (Sources/CWireSelect) checks the whole text as jansson would and copies out only
/// the fields kept (`keptFields(kind:)`) and those the wire checks read, so the checks and the
/// trimming run as before on a tree a tenth the size. Each object's size as sent is measured on
/// the way (the object cap applies to it).
struct WireSelection: Sendable {
    let nodes: [wire_node]
    let names: [UInt8]

    /// A selection as a tree, to be merged before it is flattened.
    struct Pick {
        var shape: FieldSelection.Shape
        var measure = false
        var members: [(name: String, pick: Pick)] = []
        var element: [Pick] = []

        static let whole = Pick(shape: .whole)
        static func object(_ members: [(String, Pick)], measure: Bool = false) -> Pick {
            Pick(shape: .object, measure: measure, members: members.map { (name: $0.0, pick: $0.1) })
        }
        static func array(_ element: Pick) -> Pick { Pick(shape: .array, element: [element]) }

        init(shape: FieldSelection.Shape, measure: Bool = false, members: [(name: String, pick: Pick)] = [], element: [Pick] = []) {
            (self.shape, self.measure, self.members, self.element) = (shape, measure, members, element)
        }

        init(_ s: FieldSelection) {
            switch s.shape {
            case .whole: self = .whole
            case .object: self = .object(s.members.map { ($0.name, Pick($0.selection)) })
            case .array: self = .array(Pick(s.element))
            }
        }

        /// Everything either keeps; a value one keeps whole is kept whole.
        func union(_ o: Pick) -> Pick {
            var out: Pick
            switch (shape, o.shape) {
            case (.object, .object):
                out = self
                for (name, p) in o.members {
                    if let i = out.members.firstIndex(where: { $0.name == name }) {
                        out.members[i].pick = out.members[i].pick.union(p)
                    } else {
                        out.members.append((name, p))
                    }
                }
            case (.array, .array):
                out = self
                out.element = [element[0].union(o.element[0])]
            default:
                out = .whole
            }
            out.measure = measure || o.measure
            return out
        }
    }

    init(_ root: Pick) {
        // Breadth first: each node's children are contiguous, as wire_node says.
        var nodes: [wire_node] = [wire_node(shape: 0, measure: 0, first: 0, count: 0, name_offset: 0, name_length: 0)]
        var names: [UInt8] = []
        var queue: [(index: Int, pick: Pick)] = [(0, root)]
        var head = 0
        while head < queue.count {
            let (index, pick) = queue[head]
            head += 1
            let children: [(name: String, pick: Pick)] = pick.shape == .object ? pick.members : pick.shape == .array ? [("", pick.element[0])] : []
            let shape: UInt8 = switch pick.shape { case .whole: UInt8(WIRE_WHOLE); case .object: UInt8(WIRE_OBJECT); case .array: UInt8(WIRE_ARRAY) }
            nodes[index].shape = shape
            nodes[index].measure = pick.measure ? 1 : 0
            nodes[index].first = UInt32(nodes.count)
            nodes[index].count = UInt32(children.count)
            for (name, child) in children {
                let offset = names.count
                names += Array(name.utf8)
                nodes.append(wire_node(shape: 0, measure: 0, first: 0, count: 0, name_offset: UInt32(offset), name_length: UInt32(names.count - offset)))
                queue.append((nodes.count - 1, child))
            }
        }
        self.nodes = nodes
        self.names = names
    }

    /// What `checkObject` and `WireJSON.status` read of an object (a Status in an ERROR event or
    /// where a list or object belongs included).
    static let checked: Pick = .object([
        ("kind", .whole), ("apiVersion", .whole),
        ("metadata", .object([("name", .whole), ("namespace", .whole), ("resourceVersion", .whole), ("continue", .whole)])),
        ("code", .whole), ("reason", .whole), ("message", .whole),
    ])

    private static func object(_ kind: String) -> Pick? {
        keptFields(kind: kind).map { var p = checked.union(Pick($0)); p.measure = true; return p }
    }

    /// For a watch event of `kind`; nil when the kind is kept whole.
    static func event(kind: String) -> WireSelection? { events[kind] }
    /// For a list page of `kind`; nil when the kind is kept whole.
    static func list(kind: String) -> WireSelection? { lists[kind] }

    private static let events: [String: WireSelection] = Dictionary(uniqueKeysWithValues: trimmedKinds.compactMap { kind in
        object(kind).map { (kind, WireSelection(.object([("type", .whole), ("object", $0)]))) }
    })
    private static let lists: [String: WireSelection] = Dictionary(uniqueKeysWithValues: trimmedKinds.compactMap { kind in
        object(kind).map { (kind, WireSelection(checked.union(.object([("items", .array($0))])))) }
    })

    /// The selected JSON and the sizes as sent of the measured values, in order; nil when the text
    /// holds a NUL byte (left to jansson, whose reader skips them).
    /// An empty text is left to jansson too (its message says so).
    func select(_ bytes: [UInt8], what: String) throws(WireError) -> (json: [UInt8], sizes: [Int])? {
        var r = wire_result()
        defer { wire_result_free(&r) }
        let status: Int32 = bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return -3 }
            return nodes.withUnsafeBufferPointer { n in
                names.withUnsafeBufferPointer { s in wire_select(base, b.count, n.baseAddress, n.count, s.baseAddress, &r) }
            }
        }
        switch status {
        case 0:
            let json = Array(UnsafeBufferPointer(start: r.out, count: r.out_length))
            let sizes = (0..<r.span_count).map { r.spans[$0].end - r.spans[$0].start }
            return (json, sizes)
        case -3:
            return nil
        default:
            let text = withUnsafeBytes(of: r.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw WireError(.malformed, "\(what) is not JSON: \(text) at line \(r.error_line), column \(r.error_column)")
        }
    }
}
