import Foundation

// The syntax layer deliberately stops short of typing scalars: whether `0123`, `yes` or `null`
// is a string, a number or absent depends on the schema field it lands in, so the tree keeps
// the exact text plus how it was written and lets the schema-driven decoder decide.

/// A position in the source file, 1-based. `line == 0` means the position is unknown
/// (jansson does not report positions of successfully parsed values).
public struct SourceMark: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// How a scalar was written; the schema needs this because a quoted `"80"` is a string even
/// where a plain `80` would be accepted as a number.
public enum ScalarStyle: UInt8, Sendable {
    /// YAML plain scalar (unquoted).
    case plain
    /// YAML single/double-quoted, literal or folded block, or explicitly tagged `!!str`.
    case quoted
    case jsonString, jsonInteger, jsonReal, jsonTrue, jsonFalse, jsonNull
}

/// Index of a node in its tree's arena; only meaningful together with the tree that produced it.
public struct NodeID: Hashable, Sendable {
    public let index: Int32
}

public enum NodeKind: UInt8, Sendable {
    case scalar, mapping, sequence
}

/// A problem in the text of a manifest, located as precisely as the parser allows.
public struct SyntaxError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public init(file: String, mark: SourceMark, message: String) {
        self.init(file: file, line: mark.line, column: mark.column, message: message)
    }

    public var description: String {
        line == 0 ? "\(file): \(message)" : "\(file):\(line):\(column): \(message)"
    }
}

/// One node of the flat arena. Kept at 20 bytes because a large EndpointSlice dump produces
/// millions of nodes and they all live until the compile finishes.
struct NodeRecord: Sendable {
    /// Scalar: byte offset into the text arena. Container: first slot in `children`.
    var start: UInt32
    /// Scalar: byte length. Container: number of child slots (two per mapping entry).
    var length: UInt32
    /// -1 for document roots (and for nodes orphaned by a YAML merge key).
    var parent: Int32
    var line: UInt32
    /// Bits 0-1 kind, 2-4 style, 8-31 column (saturated; only messages read it).
    private var info: UInt32

    init(start: UInt32, length: UInt32, parent: Int32, line: UInt32, column: UInt32, kind: NodeKind, style: ScalarStyle) {
        self.start = start
        self.length = length
        self.parent = parent
        self.line = line
        self.info = UInt32(kind.rawValue) | UInt32(style.rawValue) << 2 | min(column, 0xFF_FFFF) << 8
    }

    var kind: NodeKind {
        NodeKind(rawValue: UInt8(truncatingIfNeeded: info & 3)) ?? .scalar
    }

    var style: ScalarStyle {
        ScalarStyle(rawValue: UInt8(truncatingIfNeeded: (info >> 2) & 7)) ?? .plain
    }

    var column: UInt32 {
        get { info >> 8 }
        set { info = (info & 0xFF) | min(newValue, 0xFF_FFFF) << 8 }
    }
}

/// Parsed manifest file: every node of every document in a few flat arrays, so that a
/// multi-megabyte file costs a handful of allocations rather than one per node or scalar.
public struct ManifestTree: Sendable {
    /// The path the tree came from, for messages.
    public let file: String
    let nodes: [NodeRecord]
    /// Child slots of all containers; each container's children are contiguous.
    /// Mappings store key, value, key, value, ...
    let children: [Int32]
    /// All scalar bytes, concatenated.
    let text: [UInt8]
    let roots: [NodeID]

    init(file: String, nodes: [NodeRecord], children: [Int32], text: [UInt8], roots: [NodeID]) {
        self.file = file
        self.nodes = nodes
        self.children = children
        self.text = text
        self.roots = roots
    }

    /// Root of each non-empty document, in order: YAML `---` documents, or top-level JSON values;
    /// empty documents and bare nulls are left out.
    public var documents: [NodeID] { roots }

    /// Total number of nodes in the arena (including unlisted null documents).
    public var nodeCount: Int { nodes.count }

    public func kind(_ n: NodeID) -> NodeKind { nodes[Int(n.index)].kind }

    public func style(_ n: NodeID) -> ScalarStyle { nodes[Int(n.index)].style }

    public func mark(_ n: NodeID) -> SourceMark {
        let r = nodes[Int(n.index)]
        return SourceMark(line: Int(r.line), column: Int(r.column))
    }

    /// Sequence items, mapping entries, or 0 for a scalar.
    public func count(_ n: NodeID) -> Int {
        let r = nodes[Int(n.index)]
        switch r.kind {
        case .scalar: return 0
        case .sequence: return Int(r.length)
        case .mapping: return Int(r.length) / 2
        }
    }

    /// Sequence children in order; empty for scalars and mappings.
    public func items(_ n: NodeID) -> NodeList {
        let r = nodes[Int(n.index)]
        guard r.kind == .sequence else { return NodeList(children: children, base: 0, count: 0) }
        return NodeList(children: children, base: Int(r.start), count: Int(r.length))
    }

    /// Mapping entries in document order; empty for scalars and sequences.
    public func entries(_ n: NodeID) -> EntryList {
        let r = nodes[Int(n.index)]
        guard r.kind == .mapping else { return EntryList(children: children, base: 0, count: 0) }
        return EntryList(children: children, base: Int(r.start), count: Int(r.length) / 2)
    }

    /// Value for `key` in a mapping, comparing UTF-8 bytes so no String is built per key.
    public func value(_ mapping: NodeID, _ key: String) -> NodeID? {
        let r = nodes[Int(mapping.index)]
        guard r.kind == .mapping else { return nil }
        var key = key
        return key.withUTF8 { k in
            var slot = Int(r.start)
            let end = slot + Int(r.length)
            while slot < end {
                let n = nodes[Int(children[slot])]
                if n.kind == .scalar, Int(n.length) == k.count, textEquals(Int(n.start), k) {
                    return NodeID(index: children[slot + 1])
                }
                slot += 2
            }
            return nil
        }
    }

    /// Whether the arena holds `bytes` at `start` (the decoder's field lookups compare keys
    /// millions of times: a byte loop over both buffers, not a generic sequence comparison).
    @inline(__always)
    private func textEquals(_ start: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        text.withUnsafeBufferPointer { t in
            guard start + bytes.count <= t.count else { return false }
            for i in 0 ..< bytes.count where t[start + i] != bytes[i] { return false }
            return true
        }
    }

    /// Scalar text (allocates); empty for containers.
    public func text(_ n: NodeID) -> String {
        String(decoding: bytes(n), as: UTF8.self)
    }

    /// Scalar bytes as a view into the arena (no copy); empty for containers.
    public func bytes(_ n: NodeID) -> ArraySlice<UInt8> {
        let r = nodes[Int(n.index)]
        guard r.kind == .scalar else { return text[0 ..< 0] }
        let s = Int(r.start)
        return text[s ..< s + Int(r.length)]
    }

    public func withText<R>(_ n: NodeID, _ body: (ArraySlice<UInt8>) throws -> R) rethrows -> R {
        try body(bytes(n))
    }

    /// Compares scalar text with `s` without materialising the node's text.
    public func textEquals(_ n: NodeID, _ s: String) -> Bool {
        let r = nodes[Int(n.index)]
        guard r.kind == .scalar else { return false }
        var s = s
        return s.withUTF8 { k in k.count == Int(r.length) && textEquals(Int(r.start), k) }
    }

    /// True for a scalar that YAML or JSON would read as null (plain `null`/`~`/empty, JSON null).
    public func isNull(_ n: NodeID) -> Bool {
        let r = nodes[Int(n.index)]
        guard r.kind == .scalar else { return false }
        switch r.style {
        case .jsonNull: return true
        case .plain: return Self.isNullText(text, Int(r.start), Int(r.length))
        default: return false
        }
    }

    public func parent(_ n: NodeID) -> NodeID? {
        let p = nodes[Int(n.index)].parent
        return p < 0 ? nil : NodeID(index: p)
    }

    /// Builds a located error, so later stages report problems at the offending node.
    public func error(at n: NodeID, _ message: String) -> SyntaxError {
        SyntaxError(file: file, mark: mark(n), message: message)
    }

    /// Address of a node that survives re-parsing the same bytes: the document index followed by
    /// the child slot at each level. For a mapping, entry `i` has its key at slot `2*i` and its
    /// value at slot `2*i + 1`. Returns [] for a node that is not reachable from a listed document.
    public func path(_ n: NodeID) -> [Int] {
        var reversed: [Int] = []
        var current = n.index
        while true {
            let p = nodes[Int(current)].parent
            if p < 0 {
                guard let doc = roots.firstIndex(of: NodeID(index: current)) else { return [] }
                reversed.append(doc)
                return reversed.reversed()
            }
            let r = nodes[Int(p)]
            let base = Int(r.start)
            guard let slot = children[base ..< base + Int(r.length)].firstIndex(of: current) else { return [] }
            reversed.append(slot - base)
            current = p
        }
    }

    /// Inverse of `path(_:)`; nil if the path does not fit this tree.
    public func node(atPath path: [Int]) -> NodeID? {
        guard let first = path.first, roots.indices.contains(first) else { return nil }
        var current = roots[first]
        for slot in path.dropFirst() {
            let r = nodes[Int(current.index)]
            guard r.kind != .scalar, slot >= 0, slot < Int(r.length) else { return nil }
            current = NodeID(index: children[Int(r.start) + slot])
        }
        return current
    }
}

/// Sequence items as a cheap view over the shared child array (no copy per call).
public struct NodeList: RandomAccessCollection, Sendable {
    let children: [Int32]
    let base: Int
    public let count: Int

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(position: Int) -> NodeID {
        precondition(position >= 0 && position < count, "NodeList index out of range")
        return NodeID(index: children[base + position])
    }
}

/// Mapping entries as a cheap view over the shared child array (no copy per call).
public struct EntryList: RandomAccessCollection, Sendable {
    let children: [Int32]
    let base: Int
    public let count: Int

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(position: Int) -> (key: NodeID, value: NodeID) {
        precondition(position >= 0 && position < count, "EntryList index out of range")
        let slot = base + 2 * position
        return (key: NodeID(index: children[slot]), value: NodeID(index: children[slot + 1]))
    }
}
