import Crypto
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
        let utf8 = key.utf8
        let keyLength = utf8.count
        var slot = Int(r.start)
        let end = slot + Int(r.length)
        while slot < end {
            let k = nodes[Int(children[slot])]
            if k.kind == .scalar, Int(k.length) == keyLength {
                let s = Int(k.start)
                if text[s ..< s + keyLength].elementsEqual(utf8) {
                    return NodeID(index: children[slot + 1])
                }
            }
            slot += 2
        }
        return nil
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
        let utf8 = s.utf8
        guard utf8.count == Int(r.length) else { return false }
        let start = Int(r.start)
        return text[start ..< start + Int(r.length)].elementsEqual(utf8)
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

    // MARK: Canonical digest

    private enum CanonicalTag: UInt8 {
        case null = 0x6E  // n
        case bool = 0x62  // b
        case int = 0x69  // i
        case real = 0x72  // r
        case string = 0x73  // s
        case key = 0x6B  // k
        case mapping = 0x6D  // m
        case sequence = 0x61  // a
    }

    /// SHA-256 of a canonical serialisation of the subtree, so the same object digests the same
    /// whether it was written as YAML or JSON and whatever its key order.
    ///
    /// Plain YAML scalars are typed the way YAML 1.2's core schema and JSON agree on:
    /// `null`/`Null`/`NULL`/`~`/empty are null; `true`/`True`/`TRUE`/`false`/`False`/`FALSE` are
    /// booleans; text matching JSON's integer grammar is an integer; text matching JSON's number
    /// grammar with a fraction or exponent is a real (compared by value); anything else, and every
    /// quoted scalar, is a string. Mapping keys are always compared as strings, as in JSON.
    public func canonicalDigest(_ n: NodeID) -> [UInt8] {
        var sink = DigestSink()
        enum Work {
            case node(Int32)
            case key(Int32)
        }
        var stack: [Work] = [.node(n.index)]
        /// Child slots of the current mapping's keys, reused to avoid an allocation per mapping.
        var order: [Int] = []
        while let work = stack.popLast() {
            switch work {
            case .key(let k):
                let r = nodes[Int(k)]
                sink.record(.key, text, Int(r.start), Int(r.length))
            case .node(let idx):
                let r = nodes[Int(idx)]
                switch r.kind {
                case .scalar:
                    emitScalar(r, into: &sink)
                case .sequence:
                    sink.header(CanonicalTag.sequence.rawValue, UInt64(r.length))
                    let base = Int(r.start)
                    var slot = base + Int(r.length)
                    while slot > base {
                        slot -= 1
                        stack.append(.node(children[slot]))
                    }
                case .mapping:
                    let count = Int(r.length) / 2
                    sink.header(CanonicalTag.mapping.rawValue, UInt64(count))
                    let base = Int(r.start)
                    order.removeAll(keepingCapacity: true)
                    var isSorted = true
                    for e in 0 ..< count {
                        if e > 0, !Self.keyLess(children[base + 2 * e - 2], children[base + 2 * e], nodes, text) {
                            isSorted = false
                        }
                        order.append(base + 2 * e)
                    }
                    // kubectl sorts YAML keys, so the sort is usually skipped.
                    if !isSorted {
                        let nodes = self.nodes, text = self.text, children = self.children
                        order.sort { Self.keyLess(children[$0], children[$1], nodes, text) }
                    }
                    for slot in order.reversed() {
                        stack.append(.node(children[slot + 1]))
                        stack.append(.key(children[slot]))
                    }
                }
            }
        }
        return sink.finish()
    }

    /// Byte-wise order of two keys' text (a proper prefix sorts first).
    @inline(__always)
    private static func keyLess(_ a: Int32, _ b: Int32, _ nodes: [NodeRecord], _ text: [UInt8]) -> Bool {
        let ra = nodes[Int(a)], rb = nodes[Int(b)]
        let sa = Int(ra.start), sb = Int(rb.start)
        let la = Int(ra.length), lb = Int(rb.length)
        var i = 0
        let n = min(la, lb)
        while i < n {
            let x = text[sa + i], y = text[sb + i]
            if x != y { return x < y }
            i += 1
        }
        return la < lb
    }

    private func emitScalar(_ r: NodeRecord, into sink: inout DigestSink) {
        let start = Int(r.start), length = Int(r.length)
        switch r.style {
        case .quoted, .jsonString:
            sink.record(.string, text, start, length)
        case .jsonNull:
            sink.record(.null, text, 0, 0)
        case .jsonTrue:
            sink.record(.bool, Self.trueBytes, 0, 4)
        case .jsonFalse:
            sink.record(.bool, Self.falseBytes, 0, 5)
        case .jsonInteger:
            emitInteger(start, length, into: &sink)
        case .jsonReal:
            emitReal(start, length, into: &sink)
        case .plain:
            if Self.isNullText(text, start, length) {
                sink.record(.null, text, 0, 0)
            } else if let b = Self.boolValue(text, start, length) {
                if b { sink.record(.bool, Self.trueBytes, 0, 4) } else { sink.record(.bool, Self.falseBytes, 0, 5) }
            } else {
                switch Self.numberShape(text, start, length) {
                case .integer: emitInteger(start, length, into: &sink)
                case .real: emitReal(start, length, into: &sink)
                case .none: sink.record(.string, text, start, length)
                }
            }
        }
    }

    private func emitInteger(_ start: Int, _ length: Int, into sink: inout DigestSink) {
        // "-0" is the only integer spelling JSON's grammar allows that is not already canonical.
        if length == 2, text[start] == UInt8(ascii: "-"), text[start + 1] == UInt8(ascii: "0") {
            sink.record(.int, Self.zeroBytes, 0, 1)
        } else {
            sink.record(.int, text, start, length)
        }
    }

    private func emitReal(_ start: Int, _ length: Int, into sink: inout DigestSink) {
        let s = String(decoding: text[start ..< start + length], as: UTF8.self)
        if let d = Double(s) {
            let canonical = Array("\(d)".utf8)
            sink.record(.real, canonical, 0, canonical.count)
        } else {
            sink.record(.real, text, start, length)
        }
    }

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let zeroBytes: [UInt8] = [UInt8(ascii: "0")]

    private struct DigestSink {
        private var hasher = SHA256()
        private var buffer: [UInt8] = []
        private static let chunk = 1 << 16

        init() { buffer.reserveCapacity(Self.chunk) }

        mutating func header(_ tag: UInt8, _ value: UInt64) {
            if buffer.count + 9 > Self.chunk { flush() }
            buffer.append(tag)
            var v = value
            for _ in 0 ..< 8 {
                buffer.append(UInt8(truncatingIfNeeded: v))
                v >>= 8
            }
        }

        mutating func record(_ tag: CanonicalTag, _ bytes: [UInt8], _ start: Int, _ length: Int) {
            header(tag.rawValue, UInt64(length))
            if length > Self.chunk / 4 {
                flush()
                hasher.update(data: bytes[start ..< start + length])
            } else {
                if buffer.count + length > Self.chunk { flush() }
                buffer.append(contentsOf: bytes[start ..< start + length])
            }
        }

        mutating func flush() {
            if !buffer.isEmpty {
                hasher.update(data: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }

        mutating func finish() -> [UInt8] {
            flush()
            return Array(hasher.finalize())
        }
    }

    // MARK: Plain-scalar shapes (shared with the builder)

    static func isNullText(_ text: [UInt8], _ start: Int, _ length: Int) -> Bool {
        switch length {
        case 0: return true
        case 1: return text[start] == UInt8(ascii: "~")
        case 4:
            let s = text[start ..< start + 4]
            return s.elementsEqual("null".utf8) || s.elementsEqual("Null".utf8) || s.elementsEqual("NULL".utf8)
        default: return false
        }
    }

    static func boolValue(_ text: [UInt8], _ start: Int, _ length: Int) -> Bool? {
        let s = text[start ..< start + length]
        switch length {
        case 4:
            if s.elementsEqual("true".utf8) || s.elementsEqual("True".utf8) || s.elementsEqual("TRUE".utf8) { return true }
        case 5:
            if s.elementsEqual("false".utf8) || s.elementsEqual("False".utf8) || s.elementsEqual("FALSE".utf8) { return false }
        default: break
        }
        return nil
    }

    enum NumberShape { case none, integer, real }

    /// Classifies text by JSON's number grammar, the one notation YAML and JSON share.
    static func numberShape(_ text: [UInt8], _ start: Int, _ length: Int) -> NumberShape {
        let end = start + length
        var i = start
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if i < end, text[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end, isDigit(text[i]) else { return .none }
        if text[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < end, isDigit(text[i]) { i += 1 }
        }
        var shape = NumberShape.integer
        if i < end, text[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, isDigit(text[i]) else { return .none }
            while i < end, isDigit(text[i]) { i += 1 }
            shape = .real
        }
        if i < end, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, isDigit(text[i]) else { return .none }
            while i < end, isDigit(text[i]) { i += 1 }
            shape = .real
        }
        return i == end ? shape : .none
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

// MARK: - Builder

/// Assembles the arena from a stream of start/end events with an explicit stack, so nesting
/// depth never turns into Swift call depth. Shared by the YAML and JSON readers.
struct TreeBuilder {
    let file: String
    /// YAML needs duplicate-key and merge-key handling; jansson already rejects duplicates.
    let yamlSemantics: Bool
    var nodes: [NodeRecord] = []
    var children: [Int32] = []
    /// Scalar bytes; readers append a scalar's bytes here and then call `addScalar`.
    var text: [UInt8] = []
    var roots: [NodeID] = []
    /// Root of the document being built, set when a node is added with no open container.
    var currentRoot: Int32 = -1

    private struct Frame {
        var node: Int32
        var pendingStart: Int
        var kind: NodeKind
    }
    private var frames: [Frame] = []
    /// Child slots of all open containers, innermost last; moved to `children` on close.
    private var pending: [Int32] = []
    private var keyTable = KeyTable()
    private static let keyCacheSize = 1024
    /// start << 32 | length of recently seen keys; 0 = empty (keys of length 0 are not cached).
    private var keyCache = [UInt64](repeating: 0, count: TreeBuilder.keyCacheSize)
    private var aliasCopies = 0

    init(file: String, yamlSemantics: Bool, inputSize: Int) {
        self.file = file
        self.yamlSemantics = yamlSemantics
        // Reserving from the input size avoids repeated doubling copies of the big arrays;
        // untouched reserved pages are not resident, so over-estimating costs little.
        text.reserveCapacity(inputSize + 16)
        nodes.reserveCapacity(inputSize / 8 + 16)
        children.reserveCapacity(inputSize / 8 + 16)
    }

    func error(_ line: UInt32, _ column: UInt32, _ message: String) -> SyntaxError {
        SyntaxError(file: file, line: Int(line), column: Int(column), message: message)
    }

    private mutating func attach(_ record: NodeRecord) throws(SyntaxError) -> Int32 {
        guard nodes.count < Int(Int32.max) else {
            throw error(record.line, record.column, "too many nodes in one file")
        }
        var rec = record
        let idx = Int32(nodes.count)
        if let f = frames.last {
            rec.parent = f.node
            if f.kind == .mapping, rec.kind != .scalar, (pending.count - f.pendingStart) & 1 == 0 {
                throw error(rec.line, rec.column, "mapping keys must be scalars")
            }
            pending.append(idx)
        } else {
            rec.parent = -1
            currentRoot = idx
        }
        nodes.append(rec)
        return idx
    }

    /// Adds a scalar whose bytes were appended to `text` starting at `textStart`.
    @discardableResult
    mutating func addScalar(textStart: Int, style: ScalarStyle, line: UInt32, column: UInt32) throws(SyntaxError) -> Int32 {
        guard text.count <= Int(UInt32.max) else { throw error(line, column, "file too large") }
        var start = textStart
        let length = text.count - textStart
        if length > 0, length <= 40, let f = frames.last, f.kind == .mapping, (pending.count - f.pendingStart) & 1 == 0 {
            start = internKey(start: textStart, length: length)
        }
        return try attach(NodeRecord(
            start: UInt32(truncatingIfNeeded: start),
            length: UInt32(truncatingIfNeeded: length),
            parent: -1, line: line, column: column, kind: .scalar, style: style))
    }

    /// Mapping keys repeat endlessly in large lists ("addresses", "conditions", ...), so a small
    /// direct-mapped cache lets equal keys share their bytes; this trims the text arena by
    /// roughly a third on EndpointSlice dumps. Returns where the key's bytes now start.
    private mutating func internKey(start: Int, length: Int) -> Int {
        var h: UInt32 = 0x811c_9dc5
        var i = start
        let end = start + length
        while i < end {
            h = (h ^ UInt32(text[i])) &* 0x0100_0193
            i += 1
        }
        let slot = Int(truncatingIfNeeded: (h ^ (h >> 15)) & UInt32(Self.keyCacheSize - 1))
        let cached = keyCache[slot]
        let cachedStart = Int(truncatingIfNeeded: cached >> 32)
        if cached != 0, Int(truncatingIfNeeded: cached & 0xFFFF_FFFF) == length {
            var j = 0
            while j < length, text[cachedStart + j] == text[start + j] { j += 1 }
            if j == length {
                text.removeLast(length)
                return cachedStart
            }
        }
        keyCache[slot] = UInt64(start) << 32 | UInt64(length)
        return start
    }

    /// Deeper nesting is refused. No object the compiler reads comes near it (a Pod is about 12
    /// levels deep, a CRD's schema in a dump about 100), and stopping here keeps parsing linear:
    /// libyaml's scanner does work proportional to the flow depth for every token, so a
    /// 100,000-deep `[[[…` is quadratic (seconds) unless refused early.
    static let maxDepth = 1000

    @discardableResult
    mutating func beginContainer(_ kind: NodeKind, line: UInt32, column: UInt32) throws(SyntaxError) -> Int32 {
        if frames.count >= Self.maxDepth {
            throw error(line, column, "nesting deeper than \(Self.maxDepth) levels")
        }
        let idx = try attach(NodeRecord(start: 0, length: 0, parent: -1, line: line, column: column, kind: kind, style: .plain))
        frames.append(Frame(node: idx, pendingStart: pending.count, kind: kind))
        return idx
    }

    /// Closes the innermost container; `validate` is off when re-emitting an already checked subtree.
    @discardableResult
    mutating func endContainer(validate: Bool = true) throws(SyntaxError) -> Int32 {
        guard let frame = frames.popLast() else {
            throw error(0, 0, "internal error: unbalanced container end")
        }
        if frame.kind == .mapping, validate, yamlSemantics {
            try checkDuplicateKeys(from: frame.pendingStart)
            // Scanned inline: merge keys are rare and this runs for every mapping.
            var slot = frame.pendingStart
            while slot < pending.count {
                let k = nodes[Int(pending[slot])]
                if k.length == 2, text[Int(k.start)] == UInt8(ascii: "<") {
                    try applyMergeKeys(mapping: frame.node, from: frame.pendingStart)
                    break
                }
                slot += 2
            }
        }
        let slotCount = pending.count - frame.pendingStart
        guard children.count + slotCount <= Int(UInt32.max) else {
            throw error(nodes[Int(frame.node)].line, nodes[Int(frame.node)].column, "file too large")
        }
        nodes[Int(frame.node)].start = UInt32(truncatingIfNeeded: children.count)
        nodes[Int(frame.node)].length = UInt32(truncatingIfNeeded: slotCount)
        children.append(contentsOf: pending[frame.pendingStart...])
        pending.removeSubrange(frame.pendingStart...)
        return frame.node
    }

    @inline(__always)
    func isOpen(_ node: Int32) -> Bool {
        frames.contains { $0.node == node }
    }

    /// Re-emits a finished subtree as a new subtree at the current position (YAML alias
    /// expansion). Scalars share their bytes with the original; the copy's root takes the
    /// alias's mark so messages point at the use, not the anchor.
    @discardableResult
    mutating func copySubtree(_ source: Int32, line: UInt32, column: UInt32) throws(SyntaxError) -> Int32 {
        var stack: [(node: Int32, next: Int)] = []
        func emit(_ node: Int32, _ line: UInt32, _ column: UInt32, _ b: inout TreeBuilder) throws(SyntaxError) -> Int32 {
            var r = b.nodes[Int(node)]
            r.line = line
            r.column = column
            b.aliasCopies += 1
            // Bounded so a "billion laughs" document fails instead of exhausting memory.
            if b.aliasCopies > max(1_000_000, 10 * (b.nodes.count - b.aliasCopies)) {
                throw b.error(line, column, "alias expansion too large")
            }
            if r.kind == .scalar { return try b.attach(r) }
            let idx = try b.beginContainer(r.kind, line: line, column: column)
            stack.append((node, 0))
            return idx
        }
        let root = try emit(source, line, column, &self)
        while let top = stack.last {
            let r = nodes[Int(top.node)]
            if top.next < Int(r.length) {
                stack[stack.count - 1].next += 1
                let child = children[Int(r.start) + top.next]
                let c = nodes[Int(child)]
                _ = try emit(child, c.line, c.column, &self)
            } else {
                stack.removeLast()
                try endContainer(validate: false)
            }
        }
        return root
    }

    /// Ends a document (or a top-level JSON value): lists its root unless it is empty or a bare
    /// null. JSON nulls are skipped too, so document indices — and hence `path` — agree when a
    /// JSON file is parsed by jansson and again by libyaml to locate a node.
    mutating func endDocument() {
        defer { currentRoot = -1 }
        guard currentRoot >= 0 else { return }
        let r = nodes[Int(currentRoot)]
        if r.kind == .scalar {
            if r.style == .jsonNull { return }
            if r.style == .plain, ManifestTree.isNullText(text, Int(r.start), Int(r.length)) { return }
        }
        roots.append(NodeID(index: currentRoot))
    }

    func finish() -> ManifestTree {
        ManifestTree(file: file, nodes: nodes, children: children, text: text, roots: roots)
    }

    // MARK: Integer text for JSON

    /// Appends an integer's decimal text; JSON integers keep text like YAML scalars do.
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 { text.append(UInt8(ascii: "-")) }
        let digitsStart = text.count
        var magnitude = value.magnitude
        repeat {
            text.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        text[digitsStart...].reverse()
    }

    // MARK: Key checks

    @inline(__always)
    private func keyBytesEqual(_ a: Int32, _ b: Int32) -> Bool {
        let ra = nodes[Int(a)], rb = nodes[Int(b)]
        guard ra.length == rb.length else { return false }
        let sa = Int(ra.start), sb = Int(rb.start), n = Int(ra.length)
        var i = 0
        while i < n {
            if text[sa + i] != text[sb + i] { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    private func keyHash(_ k: Int32) -> Int {
        let r = nodes[Int(k)]
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = Int(r.start)
        let end = i + Int(r.length)
        while i < end {
            h = (h ^ UInt64(text[i])) &* 0x100_0000_01b3
            i += 1
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    private func duplicateError(second: Int32, first: Int32) -> SyntaxError {
        let s = nodes[Int(second)], f = nodes[Int(first)]
        let name = String(decoding: text[Int(s.start) ..< Int(s.start) + Int(s.length)], as: UTF8.self)
        return error(s.line, s.column, "duplicate key \(shown(name)) in mapping (first at \(f.line):\(f.column))")
    }

    private mutating func checkDuplicateKeys(from start: Int) throws(SyntaxError) {
        let entryCount = (pending.count - start) / 2
        if entryCount < 2 { return }
        if entryCount <= 12 {
            var i = start + 2
            while i < pending.count {
                var j = start
                while j < i {
                    if keyBytesEqual(pending[j], pending[i]) {
                        throw duplicateError(second: pending[i], first: pending[j])
                    }
                    j += 2
                }
                i += 2
            }
            return
        }
        keyTable.reset(capacity: entryCount)
        var i = start
        while i < pending.count {
            if let first = insertKey(pending[i]) {
                throw duplicateError(second: pending[i], first: first)
            }
            i += 2
        }
    }

    /// Inserts a key into `keyTable`; returns the already present key with the same bytes, if any.
    private mutating func insertKey(_ k: Int32) -> Int32? {
        let mask = keyTable.slots.count - 1
        var slot = keyHash(k) & mask
        while true {
            let existing = keyTable.slots[slot]
            if existing < 0 {
                keyTable.slots[slot] = k
                return nil
            }
            if keyBytesEqual(existing, k) { return existing }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    private func isMergeKey(_ k: Int32) -> Bool {
        let r = nodes[Int(k)]
        return r.kind == .scalar && r.style == .plain && r.length == 2
            && text[Int(r.start)] == UInt8(ascii: "<") && text[Int(r.start) + 1] == UInt8(ascii: "<")
    }

    /// YAML merge keys (`<<: *base`), which kubectl's YAML library honours: the merged entries
    /// are spliced in where `<<` stood; explicit keys win over merged ones, and earlier merge
    /// sources win over later ones.
    private mutating func applyMergeKeys(mapping: Int32, from start: Int) throws(SyntaxError) {
        var mergeSlot = -1
        var i = start
        while i < pending.count {
            if isMergeKey(pending[i]) { mergeSlot = i; break }
            i += 2
        }
        if mergeSlot < 0 { return }

        let mergeValue = pending[mergeSlot + 1]
        let mv = nodes[Int(mergeValue)]
        var sources: [Int32] = []
        switch mv.kind {
        case .mapping:
            sources = [mergeValue]
        case .sequence:
            for s in 0 ..< Int(mv.length) {
                let item = children[Int(mv.start) + s]
                guard nodes[Int(item)].kind == .mapping else {
                    throw error(nodes[Int(item)].line, nodes[Int(item)].column,
                                "merge key value must be a mapping or a sequence of mappings")
                }
                sources.append(item)
            }
        case .scalar:
            throw error(mv.line, mv.column, "merge key value must be a mapping or a sequence of mappings")
        }

        var total = (pending.count - start) / 2
        for s in sources { total += Int(nodes[Int(s)].length) / 2 }
        keyTable.reset(capacity: total)
        i = start
        while i < pending.count {
            if i != mergeSlot { _ = insertKey(pending[i]) }
            i += 2
        }
        var merged: [Int32] = []
        for s in sources {
            let r = nodes[Int(s)]
            var slot = Int(r.start)
            let end = slot + Int(r.length)
            while slot < end {
                let k = children[slot], v = children[slot + 1]
                if insertKey(k) == nil {
                    nodes[Int(k)].parent = mapping
                    nodes[Int(v)].parent = mapping
                    merged.append(k)
                    merged.append(v)
                }
                slot += 2
            }
        }
        // The `<<` key and its value node stay in the arena but are no longer reachable.
        nodes[Int(pending[mergeSlot])].parent = -1
        nodes[Int(mergeValue)].parent = -1
        pending.replaceSubrange(mergeSlot ..< mergeSlot + 2, with: merged)
    }
}

/// Open-addressing set of key node indices for duplicate detection in large mappings.
private struct KeyTable {
    var slots: [Int32] = []

    mutating func reset(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        if slots.count == size {
            for i in slots.indices { slots[i] = -1 }
        } else {
            slots = Array(repeating: -1, count: size)
        }
    }
}
