/// Splits a manifest file into independently parseable pieces — YAML documents, top-level JSON
/// values, and the items of a JSON List — without parsing them.
///
/// Why: a cluster dump is one huge List. Parsing it whole builds a tree of the whole file (jansson
/// needs ~4× the file size for it) and keeps one core busy. Split into items, each piece is
/// parsed, decoded and dropped on its own, on every core, and memory stays near the file size.
/// The split never decides validity: when anything looks unusual it returns the whole file as
/// one piece, and the real parser reports the problem with its position.
struct ManifestChunk: Sendable, Equatable {
    enum Format: Sendable { case yaml, json }

    var file: String
    var format: Format
    var range: Range<Int>
    /// 1-based line and column of `range.lowerBound` in the file.
    var line: Int
    var column: Int
    /// For the items of a JSON List: the kind their container implies ("Service" for a
    /// ServiceList, nil for `kind: List`) and its apiVersion.
    var isListItem = false
    var listKind: String?
    var listAPIVersion: String?
    /// For a JSON List's envelope (the list object itself): the bytes inside its `items`
    /// brackets, which are decoded as item chunks; the rest is parsed and checked like any
    /// object, so nothing outside the items escapes validation.
    var excluded: Range<Int>?

    /// Converts a position inside the chunk (1-based, as the parser reported it) to the file's.
    func filePosition(line l: Int, column c: Int) -> (Int, Int) {
        guard l > 0 else { return (0, 0) }
        return (line + l - 1, l == 1 ? column + c - 1 : c)
    }
}

enum ManifestSplitter {
    /// Called with pieces as they are found, before the split is over, so they can be decoded
    /// while it goes on: each with the position it will most likely have in the result (a List
    /// item, before anyone knows the object is a List; a YAML document once the next begins).
    /// The result decides: a piece counts only if it is there, equal, at that position.
    typealias Early = (Int, ManifestChunk) -> Void

    static func split(_ bytes: [UInt8], file: String, format: ManifestChunk.Format, early: Early? = nil) -> [ManifestChunk] {
        // A UTF-8 byte order mark is accepted at the start of a file (kubectl accepts it); libyaml
        // reads it itself, jansson does not.
        let start = format == .json && bytes.starts(with: utf8BOM) ? 3 : 0
        let whole = [ManifestChunk(file: file, format: format, range: start..<bytes.count, line: 1, column: 1)]
        switch format {
        case .yaml: return splitYAML(bytes, file: file, early: early) ?? whole
        case .json: return splitJSON(bytes, file: file, from: start, early: early) ?? whole
        }
    }

    // MARK: YAML

    /// Splits at document markers: a line that is `---` or `...`, alone or followed by a space.
    /// YAML forbids such a line inside any content, so this boundary is exact. Files with
    /// directives (`%YAML`) stay whole.
    static func splitYAML(_ b: [UInt8], file: String, early: Early? = nil) -> [ManifestChunk]? {
        if ScanBridge.hasYAMLDirective(b) { return nil }
        // UTF-16 and UTF-32 (a BOM, or a NUL among the first bytes, as YAML detects them): the
        // byte patterns of markers mean nothing there; libyaml reads the file whole.
        if b.starts(with: [0xFE, 0xFF]) || b.starts(with: [0xFF, 0xFE]) || b.prefix(4).contains(0) { return nil }
        let n = b.count
        var chunks: [ManifestChunk] = []
        var start = 0, startLine = 1
        var pos = 0, line = 1
        while pos < n {
            let m = ScanBridge.nextYAMLMarker(b, from: pos, line: &line)
            if m >= n { break }
            let dots = b[m] == UInt8(ascii: ".")
            if !dots {
                if m > start {
                    // The piece before is final unless an end marker with nothing before it follows.
                    if let early, let last = chunks.last { early(chunks.count - 1, last) }
                    chunks.append(ManifestChunk(file: file, format: .yaml, range: start..<m, line: startLine, column: 1))
                }
                start = m
                startLine = line
            }
            var eol = m
            while eol < n && b[eol] != 0x0A { eol += 1 }
            pos = min(eol + 1, n)
            line += 1
            if dots {
                // An end marker closes the document (it stays in it); the next starts after it.
                // One with no content since the last marker closes nothing, and a piece holding
                // only `...` (or comments and `...`) is not a YAML stream: it stays with the
                // piece before it, which libyaml reads with it as the whole file would be read.
                if isBlank(b, start..<m), let last = chunks.indices.last {
                    chunks[last].range = chunks[last].range.lowerBound..<pos
                    start = pos
                    startLine = line
                    continue
                }
                if pos > start {
                    chunks.append(ManifestChunk(file: file, format: .yaml, range: start..<pos, line: startLine, column: 1))
                }
                start = pos
                startLine = line
            }
        }
        if start < n {
            chunks.append(ManifestChunk(file: file, format: .yaml, range: start..<n, line: startLine, column: 1))
        }
        return chunks.count > 1 ? chunks : nil
    }

    /// Only blank lines and comments.
    static func isBlank(_ b: [UInt8], _ range: Range<Int>) -> Bool {
        var i = range.lowerBound
        var lineStart = true
        while i < range.upperBound {
            let c = b[i]
            if c == UInt8(ascii: "#") && lineStart {
                while i < range.upperBound && b[i] != 0x0A { i += 1 }
                continue
            }
            if c == 0x0A {
                lineStart = true
            } else if c != 0x20 && c != 0x09 && c != 0x0D {
                return false
            }
            i += 1
        }
        return true
    }

    // MARK: JSON

    /// Finds the top-level values and, in a top-level object whose `kind` is a List, the items
    /// of its `items` array.
    static let utf8BOM: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// `bytes[range]` with `except` replaced by spaces, line breaks kept: parses to the same tree as
    /// the range without `except` when that held a List's items, with every position unchanged.
    static func blank(_ bytes: [UInt8], _ range: Range<Int>, except: Range<Int>) -> [UInt8] {
        var out = Array(bytes[range])
        for i in (except.lowerBound - range.lowerBound)..<(except.upperBound - range.lowerBound) where out[i] != 0x0A && out[i] != 0x0D {
            out[i] = 0x20
        }
        return out
    }

    static func splitJSON(_ b: [UInt8], file: String, from start: Int = 0, early: Early? = nil) -> [ManifestChunk]? {
        var scanner = JSONScanner(bytes: b)
        scanner.pos = start
        scanner.lineStart = start
        var chunks: [ManifestChunk] = []
        var splitAny = false
        scanner.skipSpace()
        while scanner.pos < b.count {
            let valueStart = scanner.pos
            let (line, col) = (scanner.line, scanner.pos - scanner.lineStart + 1)
            if b[valueStart] == UInt8(ascii: "{") {
                // Items are handed out as they are found, as if the object were a List (its
                // kind may come after them; kubectl sorts keys).
                let firstItem = chunks.count + 1
                let asItem = early.map { early in
                    { (index: Int, item: JSONScanner.Item) in
                        early(firstItem + index, ManifestChunk(file: file, format: .json, range: item.range, line: item.line, column: item.column,
                                                               isListItem: true))
                    }
                }
                guard let object = scanner.scanObjectCollectingItems(early: asItem) else { return nil }
                if let items = object.items, let interior = object.itemsInterior, let kind = object.kind, kind == "List" || kind.hasSuffix("List") {
                    splitAny = true
                    chunks.append(ManifestChunk(file: file, format: .json, range: valueStart..<scanner.pos, line: line, column: col,
                                                excluded: interior))
                    for item in items {
                        chunks.append(ManifestChunk(file: file, format: .json, range: item.range, line: item.line, column: item.column,
                                                    isListItem: true, listKind: kind == "List" ? nil : String(kind.dropLast(4)),
                                                    listAPIVersion: kind == "List" ? nil : object.apiVersion))
                    }
                } else {
                    chunks.append(ManifestChunk(file: file, format: .json, range: valueStart..<scanner.pos, line: line, column: col))
                }
            } else {
                guard scanner.skipValue() else { return nil }
                chunks.append(ManifestChunk(file: file, format: .json, range: valueStart..<scanner.pos, line: line, column: col))
            }
            scanner.skipSpace()
        }
        return (splitAny || chunks.count > 1) ? chunks : nil
    }
}

/// A byte scanner that knows JSON's lexical structure (strings, escapes, nesting) and nothing
/// more. It tracks lines so pieces keep their position in the file.
struct JSONScanner {
    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var lineStart = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    struct Item {
        var range: Range<Int>
        var line: Int
        var column: Int
    }

    struct ObjectScan {
        var kind: String?
        var apiVersion: String?
        var items: [Item]?
        /// The bytes between `items`' brackets.
        var itemsInterior: Range<Int>?
    }

    mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0D: pos += 1
            case 0x0A:
                pos += 1
                line += 1
                lineStart = pos
            default: return
            }
        }
    }

    /// Skips a string starting at `pos` (a quote); returns its raw contents when it has no escape.
    mutating func scanString() -> (ok: Bool, simple: String?) {
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { return (false, nil) }
        pos += 1
        let start = pos
        var escaped = false
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\\") {
                escaped = true
                pos += 2
                continue
            }
            if c == UInt8(ascii: "\"") {
                let s = escaped ? nil : String(decoding: bytes[start..<pos], as: UTF8.self)
                pos += 1
                return (true, s)
            }
            if c == 0x0A { return (false, nil) }
            pos += 1
        }
        return (false, nil)
    }

    /// Skips any JSON value (structurally; scalars are not validated), in C: this touches
    /// nearly every byte of a dump.
    mutating func skipValue() -> Bool {
        guard let end = ScanBridge.skipJSONValue(bytes, from: pos, line: &line, lineStart: &lineStart) else { return false }
        pos = end
        return true
    }

    /// Scans a top-level object, noting its `kind`, `apiVersion` and the item ranges of `items`.
    /// `early`: called with each item as it is found (its index among the items).
    mutating func scanObjectCollectingItems(early: ((Int, Item) -> Void)? = nil) -> ObjectScan? {
        var result = ObjectScan()
        pos += 1  // {
        skipSpace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return result }
        while true {
            skipSpace()
            let key = scanString()
            guard key.ok else { return nil }
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { return nil }
            pos += 1
            skipSpace()
            guard pos < bytes.count else { return nil }
            if key.simple == "items" && bytes[pos] == UInt8(ascii: "[") {
                // A second `items` would leave the first inside the envelope, whose parse refuses
                // the duplicate key.
                if result.items != nil { return nil }
                pos += 1
                let interiorStart = pos
                var items: [Item] = []
                skipSpace()
                var interiorEnd = pos
                if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") {
                    interiorEnd = pos
                    pos += 1
                } else {
                    while true {
                        skipSpace()
                        let start = pos, l = line, c = pos - lineStart + 1
                        guard skipValue() else { return nil }
                        items.append(Item(range: start..<pos, line: l, column: c))
                        early?(items.count - 1, items[items.count - 1])
                        skipSpace()
                        guard pos < bytes.count else { return nil }
                        if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                        if bytes[pos] == UInt8(ascii: "]") { interiorEnd = pos; pos += 1; break }
                        return nil
                    }
                }
                result.items = items
                result.itemsInterior = interiorStart..<interiorEnd
            } else if (key.simple == "kind" || key.simple == "apiVersion") && bytes[pos] == UInt8(ascii: "\"") {
                let v = scanString()
                guard v.ok, let s = v.simple else { return nil }
                if key.simple == "kind" { result.kind = s } else { result.apiVersion = s }
            } else {
                guard skipValue() else { return nil }
            }
            skipSpace()
            guard pos < bytes.count else { return nil }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return result }
            return nil
        }
    }
}

/// Drops the whitespace between JSON tokens (never inside strings). The result parses to the
/// same values; only positions differ, which is why callers keep the original for messages.
enum JSONCompactor {
    /// Pretty-printed JSON (kubectl's) has a line break right after the opening brace; compact
    /// JSON (the API server's) does not, and compacting it would only cost a copy.
    static func isIndented(_ bytes: [UInt8]) -> Bool {
        guard let open = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }),
              open + 1 < bytes.count else { return false }
        let next = bytes[open + 1]
        return next == 0x0A || next == 0x0D || next == 0x20 || next == 0x09
    }

    /// Whitespace goes only where a structural character (`{}[],:`) is on one side of it: between
    /// two other tokens (`1 2`, `tr ue`) it is kept, so garbage never compacts into valid JSON.
    static func compact(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 2)
        var inString = false
        var escaped = false
        var spaced = false
        @inline(__always) func structural(_ c: UInt8) -> Bool {
            c == UInt8(ascii: "{") || c == UInt8(ascii: "}") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]")
                || c == UInt8(ascii: ",") || c == UInt8(ascii: ":")
        }
        for b in bytes {
            if inString {
                out.append(b)
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch b {
            case 0x20, 0x0A, 0x0D, 0x09:
                spaced = true
                continue
            case UInt8(ascii: "\""): inString = true
            default: break
            }
            if spaced, let last = out.last, !structural(last), !structural(b) { out.append(0x20) }
            spaced = false
            out.append(b)
        }
        return out
    }
}
