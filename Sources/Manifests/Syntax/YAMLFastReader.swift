// A reader for the block YAML kubectl prints, filling the arena directly.

/// Why it exists: libyaml spends about 3 s of CPU on the 77 MB YAML dump of a 10,000-Service
/// cluster, more than the whole compile may take. kubectl's YAML is a narrow subset — block
/// mappings and sequences, one scalar per line, plain or quoted on one line — which a line-by-line
/// reader handles at memory speed.
///
/// Like JSONFastReader it never decides what is valid: it takes only what it knows libyaml reads,
/// and builds the tree `YAMLEventReader` builds from libyaml's events, node for node, with the
/// same marks (libyaml's start marks: a block mapping's first key, a sequence's first `-`, a
/// scalar's first character, quote or `|`). Anything else — flow collections other than `{}` and
/// `[]`, folded block scalars, multi-line flow scalars, anchors, aliases, tags, comments after content, tabs,
/// CR line breaks, non-ASCII bytes, an empty value — makes it return nil, and libyaml reads the
/// piece (and reports its problems).
enum YAMLFastReader {
    static func parse(_ input: UnsafeBufferPointer<UInt8>, file: String) -> ManifestTree? {
        FastReading.tree(input, file: file, yamlSemantics: true, Reader.self)
    }

    /// Input this reader leaves to libyaml.
    typealias Refusal = FastReading.Refusal

    private struct Reader: FastDocumentReader {
        let p: UnsafePointer<UInt8>
        let n: Int
        /// The current content line: where it starts, its 1-based number, the offset of its first
        /// non-space byte (`indent` = that minus `start`) and of its line break (or `n`).
        var start = 0
        var line = 0
        var content = 0
        var end = 0
        var atEnd = false
        /// The next line to look at and its number.
        var next = 0
        var nextLine = 1

        init(p: UnsafePointer<UInt8>, n: Int) {
            self.p = p
            self.n = n
        }

        var indent: Int { content - start }

        /// Moves to the next line holding content (blank lines and whole-line comments are
        /// skipped, as libyaml skips them); refuses bytes this reader does not handle.
        mutating func advance() throws(Refusal) {
            while next < n {
                let s = next
                var i = s
                while i < n, p[i] == 0x20 { i += 1 }
                var e = i
                while e < n {
                    let c = p[e]
                    if c == 0x0A { break }
                    // Tabs, CR, other controls, DEL and non-ASCII: left to libyaml.
                    if c < 0x20 || c >= 0x7F { throw Refusal() }
                    e += 1
                }
                line = nextLine
                next = e + 1
                nextLine += 1
                if i == e || p[i] == UInt8(ascii: "#") { continue }
                start = s
                content = i
                end = e
                return
            }
            atEnd = true
            start = n
            content = n
            end = n
        }

        func startsEntry(_ at: Int) -> Bool {
            p[at] == UInt8(ascii: "-") && (at + 1 == end || p[at + 1] == 0x20)
        }

        func column(_ at: Int) -> UInt32 { UInt32(at - start + 1) }

        mutating func document(_ b: inout TreeBuilder) throws(Refusal) {
            try advance()
            guard !atEnd else { throw Refusal() }
            if indent == 0, end - content >= 3, p[content] == UInt8(ascii: "-"), p[content + 1] == UInt8(ascii: "-"), p[content + 2] == UInt8(ascii: "-") {
                // The start marker, alone on its line.
                for k in content + 3 ..< end where p[k] != 0x20 { throw Refusal() }
                try advance()
                guard !atEnd else { throw Refusal() }
            }
            guard indent == 0, !startsEntry(content) else { throw Refusal() }
            try mapping(at: content, &b)
            guard atEnd else { throw Refusal() }
            b.endDocument()
        }

        /// A block mapping whose first key is at `at` on the current line; its keys all stand at
        /// that column. Returns on the first line indented less (or at the end).
        mutating func mapping(at: Int, _ b: inout TreeBuilder) throws(Refusal) {
            let keyColumn = at - start
            do { try b.beginContainer(.mapping, line: UInt32(line), column: column(at)) } catch { throw Refusal() }
            var pos = at
            while true {
                // A column-0 line that is a document marker ends the document for libyaml.
                if keyColumn == 0, end - pos >= 3, (p[pos] == UInt8(ascii: "-") || p[pos] == UInt8(ascii: ".")),
                   p[pos + 1] == p[pos], p[pos + 2] == p[pos] { throw Refusal() }
                let afterColon = try key(at: pos, &b)
                var v = afterColon
                while v < end, p[v] == 0x20 { v += 1 }
                if v < end {
                    // Plain `a:b` is one scalar, so a value needs a space after the colon.
                    guard v > afterColon else { throw Refusal() }
                    try inlineValue(at: v, parent: keyColumn, &b)
                    try advance()
                    if !atEnd, indent > keyColumn { throw Refusal() }
                } else {
                    try advance()
                    guard !atEnd else { throw Refusal() }
                    if indent > keyColumn {
                        if startsEntry(content) { try sequence(at: content, indentless: false, &b) } else { try mapping(at: content, &b) }
                    } else if indent == keyColumn, startsEntry(content) {
                        try sequence(at: content, indentless: true, &b)
                    } else {
                        throw Refusal()  // an empty value: a null, whose mark libyaml puts elsewhere
                    }
                    if !atEnd, indent > keyColumn { throw Refusal() }
                }
                if atEnd || indent < keyColumn { break }
                if startsEntry(content) { throw Refusal() }
                pos = content
            }
            do { try b.endContainer() } catch { throw Refusal() }
        }

        /// A block sequence whose first `-` is at `at` on the current line. An indentless one
        /// (a mapping's value at the mapping's own column) ends at the first line that is not
        /// an entry; any other ends at the first line indented less.
        mutating func sequence(at: Int, indentless: Bool, _ b: inout TreeBuilder) throws(Refusal) {
            let dashColumn = at - start
            do { try b.beginContainer(.sequence, line: UInt32(line), column: column(at)) } catch { throw Refusal() }
            while true {
                var v = content + 1
                while v < end, p[v] == 0x20 { v += 1 }
                guard v < end, !startsEntry(v) else { throw Refusal() }
                if looksLikeKey(at: v) {
                    try mapping(at: v, &b)
                } else {
                    try inlineValue(at: v, parent: dashColumn, &b)
                    try advance()
                    if !atEnd, indent > dashColumn { throw Refusal() }
                }
                if atEnd || indent < dashColumn { break }
                if indent > dashColumn { throw Refusal() }
                if !startsEntry(content) {
                    if indentless { break }
                    throw Refusal()
                }
            }
            do { try b.endContainer() } catch { throw Refusal() }
        }

        /// Whether the entry content at `at` is a mapping's first key: a quoted scalar followed by
        /// `:`, or a plain one with a `: ` (or a `:` ending the line) in it.
        func looksLikeKey(at: Int) -> Bool {
            let c = p[at]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                var i = at + 1
                while i < end {
                    if p[i] == UInt8(ascii: "\\") && c == UInt8(ascii: "\"") { i += 2; continue }
                    if p[i] == c {
                        if c == UInt8(ascii: "'"), i + 1 < end, p[i + 1] == c { i += 2; continue }
                        return i + 1 < end && p[i + 1] == UInt8(ascii: ":")
                    }
                    i += 1
                }
                return false
            }
            return colon(from: at) != nil
        }

        /// The first `:` at or after `at` that is followed by a space or ends the line.
        func colon(from at: Int) -> Int? {
            var i = at
            while i < end {
                if p[i] == UInt8(ascii: ":"), i + 1 == end || p[i + 1] == 0x20 { return i }
                i += 1
            }
            return nil
        }

        /// A key at `at` (plain or quoted, on one line, short enough for libyaml's simple keys),
        /// added to the arena; returns the offset just past its colon.
        mutating func key(at: Int, _ b: inout TreeBuilder) throws(Refusal) -> Int {
            let c = p[at]
            let after: Int
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                after = try quoted(at: at, &b)
                guard after < end, p[after] == UInt8(ascii: ":") else { throw Refusal() }
            } else {
                guard let colon = colon(from: at), colon > at else { throw Refusal() }
                var last = colon
                while p[last - 1] == 0x20 { last -= 1 }
                try plain(at, last, &b)
                after = colon
            }
            guard after - at < 1000 else { throw Refusal() }
            return after + 1
        }

        /// A value that starts on this line: a quoted or plain scalar, `{}` or `[]`, or a literal
        /// block scalar (its lines below, indented more than `parent`, the block's own column).
        mutating func inlineValue(at: Int, parent: Int, _ b: inout TreeBuilder) throws(Refusal) {
            var last = end
            while p[last - 1] == 0x20 { last -= 1 }
            let c = p[at]
            if c == UInt8(ascii: "|") {
                try literal(at: at, parent: parent, &b)
                return
            }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                guard try quoted(at: at, &b) == last else { throw Refusal() }
                return
            }
            if last - at == 2, (c == UInt8(ascii: "{") && p[at + 1] == UInt8(ascii: "}")) || (c == UInt8(ascii: "[") && p[at + 1] == UInt8(ascii: "]")) {
                do {
                    try b.beginContainer(c == UInt8(ascii: "{") ? .mapping : .sequence, line: UInt32(line), column: column(at))
                    try b.endContainer()
                } catch { throw Refusal() }
                return
            }
            if colon(from: at) != nil { throw Refusal() }
            try plain(at, last, &b)
        }

        /// A plain scalar `at..<last` (trailing spaces already cut). Refused: an indicator first
        /// (flow, anchor, alias, tag, block scalar, directive, comment, key or entry forms) and a
        /// comment inside; a `: ` inside was refused by the callers.
        mutating func plain(_ at: Int, _ last: Int, _ b: inout TreeBuilder) throws(Refusal) {
            switch p[at] {
            case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"),
                 UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "#"), UInt8(ascii: "&"), UInt8(ascii: "*"), UInt8(ascii: "!"),
                 UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "%"), UInt8(ascii: "@"),
                 UInt8(ascii: "`"):
                // `-1` is plain, but so rare in manifests that libyaml may as well read it.
                throw Refusal()
            default: break
            }
            var i = at + 1
            while i < last {
                if p[i] == UInt8(ascii: "#"), p[i - 1] == 0x20 { throw Refusal() }
                i += 1
            }
            let s = b.text.count
            b.text.append(contentsOf: UnsafeBufferPointer(start: p + at, count: last - at))
            do { try b.addScalar(textStart: s, style: .plain, line: UInt32(line), column: column(at)) } catch { throw Refusal() }
        }

        /// A literal block scalar (`|`, `|-`, `|+`; kubectl's last-applied-configuration) whose
        /// indicator is at `at`: its lines, from the next on, indented as the first of them (more
        /// than `parent`), kept as they are; the line breaks at the end chomped as the indicator
        /// says. Leaves the reader where the block ends, for `advance`. Refused: an indentation
        /// indicator, a comment after the indicator, blank lines before the first line or with
        /// more spaces than the block's indentation, and a last line without a line break.
        mutating func literal(at: Int, parent: Int, _ b: inout TreeBuilder) throws(Refusal) {
            var h = at + 1
            var chomp = 0  // -1 strip, 0 clip, 1 keep
            if h < end, p[h] == UInt8(ascii: "-") {
                chomp = -1
                h += 1
            } else if h < end, p[h] == UInt8(ascii: "+") {
                chomp = 1
                h += 1
            }
            while h < end, p[h] == 0x20 { h += 1 }
            guard h == end else { throw Refusal() }
            let s = b.text.count
            var blockIndent = -1
            var blanks = 0
            var i = next, lineNumber = nextLine
            while i < n {
                var k = i
                while k < n, p[k] == 0x20 { k += 1 }
                var e = k
                while e < n, p[e] != 0x0A {
                    if p[e] < 0x20 || p[e] >= 0x7F { throw Refusal() }
                    e += 1
                }
                guard e < n else { throw Refusal() }
                if k == e {
                    guard blockIndent >= 0, k - i <= blockIndent else { throw Refusal() }
                    blanks += 1
                } else {
                    if blockIndent < 0 {
                        guard k - i > parent else { throw Refusal() }  // an empty scalar
                        blockIndent = k - i
                    } else if k - i < blockIndent {
                        break
                    } else {
                        b.text.append(contentsOf: repeatElement(0x0A, count: blanks + 1))
                    }
                    blanks = 0
                    b.text.append(contentsOf: UnsafeBufferPointer(start: p + i + blockIndent, count: e - i - blockIndent))
                }
                i = e + 1
                lineNumber += 1
            }
            guard blockIndent >= 0 else { throw Refusal() }
            if chomp >= 0 { b.text.append(0x0A) }
            if chomp == 1 { b.text.append(contentsOf: repeatElement(0x0A, count: blanks)) }
            do { try b.addScalar(textStart: s, style: .quoted, line: UInt32(line), column: column(at)) } catch { throw Refusal() }
            next = i
            nextLine = lineNumber
        }

        /// A single- or double-quoted scalar closed on this line, decoded into the arena; returns
        /// the offset past its closing quote.
        mutating func quoted(at: Int, _ b: inout TreeBuilder) throws(Refusal) -> Int {
            let q = p[at]
            let s = b.text.count
            var i = at + 1
            var run = i
            while true {
                guard i < end else { throw Refusal() }  // continued on the next line: folded
                let c = p[i]
                if c == q {
                    b.text.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    if q == UInt8(ascii: "'"), i + 1 < end, p[i + 1] == q {
                        b.text.append(q)
                        i += 2
                        run = i
                        continue
                    }
                    i += 1
                    break
                }
                if c == UInt8(ascii: "\\"), q == UInt8(ascii: "\"") {
                    b.text.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    i = try escape(at: i, &b)
                    run = i
                    continue
                }
                i += 1
            }
            do { try b.addScalar(textStart: s, style: .quoted, line: UInt32(line), column: column(at)) } catch { throw Refusal() }
            return i
        }

        /// A double-quoted scalar's escape at `at` (its backslash), decoded as libyaml decodes it;
        /// returns the offset after it.
        mutating func escape(at: Int, _ b: inout TreeBuilder) throws(Refusal) -> Int {
            guard at + 1 < end else { throw Refusal() }
            let e = p[at + 1]
            var digits = 0
            switch e {
            case UInt8(ascii: "0"): b.text.append(0)
            case UInt8(ascii: "a"): b.text.append(0x07)
            case UInt8(ascii: "b"): b.text.append(0x08)
            case UInt8(ascii: "t"): b.text.append(0x09)
            case UInt8(ascii: "n"): b.text.append(0x0A)
            case UInt8(ascii: "v"): b.text.append(0x0B)
            case UInt8(ascii: "f"): b.text.append(0x0C)
            case UInt8(ascii: "r"): b.text.append(0x0D)
            case UInt8(ascii: "e"): b.text.append(0x1B)
            case 0x20, UInt8(ascii: "\""), UInt8(ascii: "/"), UInt8(ascii: "\\"): b.text.append(e)
            case UInt8(ascii: "x"): digits = 2
            case UInt8(ascii: "u"): digits = 4
            case UInt8(ascii: "U"): digits = 8
            default: throw Refusal()  // \N, \_, \L, \P and unknown escapes
            }
            if digits == 0 { return at + 2 }
            guard end - (at + 2) >= digits, let v = FastReading.hex(p + at + 2, count: digits) else { throw Refusal() }
            guard v <= 0x10FFFF, !(v >= 0xD800 && v <= 0xDFFF) else { throw Refusal() }
            FastReading.appendUTF8(v, to: &b.text)
            return at + 2 + digits
        }
    }
}
