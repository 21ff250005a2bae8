// The builder behind both readers: the arena of ManifestTree.swift, filled from parse events.

/// Assembles the arena from a stream of start/end events with an explicit stack, so nesting
/// depth never turns into Swift call depth. Shared by the YAML and JSON readers.
struct TreeBuilder {
    let file: String
    /// YAML needs duplicate-key and merge-key handling; jansson already rejects duplicates.
    let yamlSemantics: Bool
    /// Duplicate keys refused without YAML's merge keys: JSONFastReader, which has no jansson
    /// before it.
    let rejectDuplicateKeys: Bool
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

    /// The tree `read` builds from `bytes` (a reader fills the builder from its parser's events and
    /// returns the first error).
    static func build(_ bytes: [UInt8], file: String, yamlSemantics: Bool,
                      _ read: (UnsafeBufferPointer<UInt8>, inout TreeBuilder) -> SyntaxError?) throws(SyntaxError) -> ManifestTree {
        var builder = TreeBuilder(file: file, yamlSemantics: yamlSemantics, inputSize: bytes.count)
        let failure = bytes.withUnsafeBufferPointer { read($0, &builder) }
        if let failure { throw failure }
        return builder.finish()
    }

    init(file: String, yamlSemantics: Bool, inputSize: Int, rejectDuplicateKeys: Bool = false) {
        self.file = file
        self.yamlSemantics = yamlSemantics
        self.rejectDuplicateKeys = yamlSemantics || rejectDuplicateKeys
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
        if frame.kind == .mapping, validate, rejectDuplicateKeys {
            try checkDuplicateKeys(from: frame.pendingStart)
        }
        if frame.kind == .mapping, validate, yamlSemantics {
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
