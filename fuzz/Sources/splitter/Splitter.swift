@testable import Manifests

// Target 1: the manifest splitter (Sources/Manifests/Syntax/Splitter.swift and its C byte loops).
// The same input is split as YAML and as JSON. Besides crashes, each split is checked against
// what it promises: pieces in order, inside the file, at the positions they claim, and — when the
// whole file parses — parsing the pieces gives the same documents (by canonical digest) as
// parsing the file whole.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSplitter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    checkYAMLSplit(bytes)
    checkJSONSplit(bytes)
    return 0
}

func checkYAMLSplit(_ b: [UInt8]) {
    let chunks = ManifestSplitter.split(b, file: "f.yaml", format: .yaml)
    check(!chunks.isEmpty, "YAML split returned no piece")
    check(chunks.first?.range.lowerBound == 0 && chunks.last?.range.upperBound == b.count, "YAML pieces do not cover the file")
    for (i, c) in chunks.enumerated() {
        check(c.format == .yaml && !c.isListItem, "YAML piece \(i) has format \(c.format)")
        if i > 0 { check(chunks[i - 1].range.upperBound == c.range.lowerBound, "YAML pieces \(i - 1) and \(i) are not contiguous") }
        if chunks.count > 1 { check(!c.range.isEmpty, "empty YAML piece \(i)") }
        check(c.range.lowerBound == 0 || b[c.range.lowerBound - 1] == 0x0A, "YAML piece \(i) starts mid-line at \(c.range.lowerBound)")
        let p = position(of: c.range.lowerBound, in: b)
        check(c.line == p.line && c.column == 1, "YAML piece \(i) claims \(c.line):\(c.column), is at \(p.line):\(p.column)")
    }
    guard chunks.count > 1, let whole = try? ManifestReader.parseYAML(b, file: "f.yaml") else { return }
    var pieces: [[UInt8]] = []
    for c in chunks {
        let piece = Array(b[c.range])
        guard let tree = try? ManifestReader.parseYAML(piece, file: "f.yaml") else {
            violated("the file parses whole but its YAML piece \(show(piece)) does not")
        }
        pieces += tree.documents.map { tree.canonicalDigest($0) }
    }
    let expected = whole.documents.map { whole.canonicalDigest($0) }
    check(pieces == expected, "YAML pieces give \(pieces.count) documents, the whole file \(expected.count), or different ones")
}

func checkJSONSplit(_ b: [UInt8]) {
    let chunks = ManifestSplitter.split(b, file: "f.json", format: .json)
    // No piece at all is right for Lists without items.
    // Kept whole (after a UTF-8 byte order mark, which jansson does not read).
    let bom = b.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    if chunks.count == 1 && !chunks[0].isListItem && chunks[0].range == bom..<b.count { return }
    var end = 0
    // A List's envelope (its own members; `excluded` is inside its brackets) comes before its
    // items, which lie in `excluded`; the next value starts after the envelope.
    var envelope: (items: Range<Int>, end: Int)?
    for (i, c) in chunks.enumerated() {
        check(c.format == .json, "JSON piece \(i) has format \(c.format)")
        if let open = envelope, c.range.lowerBound >= open.items.upperBound {
            end = open.end
            envelope = nil
        }
        if let open = envelope {
            check(c.isListItem && open.items.contains(c.range.lowerBound) && c.range.upperBound <= open.items.upperBound,
                  "JSON item piece \(i) at \(c.range) is not inside its List's items \(open.items)")
        }
        check(c.range.lowerBound >= end && c.range.upperBound <= b.count && !c.range.isEmpty, "JSON piece \(i) at \(c.range) overlaps or leaves the file (\(b.count) bytes)")
        if let items = c.excluded {
            check(c.range.lowerBound < items.lowerBound && items.upperBound < c.range.upperBound
                  && b[items.lowerBound - 1] == UInt8(ascii: "[") && b[items.upperBound] == UInt8(ascii: "]"),
                  "JSON envelope \(i) at \(c.range) does not hold its items' brackets \(items)")
            envelope = (items, c.range.upperBound)
            end = items.lowerBound
        } else {
            end = c.range.upperBound
        }
        let first = b[c.range.lowerBound]
        check(first != 0x20 && first != 0x0A && first != 0x0D && first != 0x09, "JSON piece \(i) starts with whitespace")
        let p = position(of: c.range.lowerBound, in: b, bomIsColumn: false)
        check(c.line == p.line && c.column == p.column, "JSON piece \(i) claims \(c.line):\(c.column), is at \(p.line):\(p.column)")
    }
    guard let whole = try? ManifestReader.parseJSON(b, file: "f.json") else { return }
    var actual: [[UInt8]] = []
    for c in chunks {
        // The envelope with its items cut out must parse too; its documents are the items'.
        let piece = c.excluded.map { Array(b[c.range.lowerBound..<$0.lowerBound]) + Array(b[$0.upperBound..<c.range.upperBound]) }
            ?? Array(b[c.range])
        guard let tree = try? ManifestReader.parseJSON(piece, file: "f.json") else {
            violated("the file parses whole but its JSON piece \(show(piece)) does not")
        }
        if c.excluded == nil { actual += tree.documents.map { tree.canonicalDigest($0) } }
    }
    // Each whole document is one piece, or (a List the splitter opened) its non-null items.
    var next = 0
    for doc in whole.documents {
        let digest = whole.canonicalDigest(doc)
        if next < actual.count && actual[next] == digest {
            next += 1
            continue
        }
        guard whole.kind(doc) == .mapping, let kind = whole.value(doc, "kind").map({ whole.text($0) }), kind.hasSuffix("List"),
              let items = whole.value(doc, "items"), whole.kind(items) == .sequence else {
            violated("JSON document \(next) of the whole file is not among the pieces")
        }
        let itemDigests = whole.items(items).filter { !whole.isNull($0) }.map { whole.canonicalDigest($0) }
        check(next + itemDigests.count <= actual.count && Array(actual[next..<(next + itemDigests.count)]) == itemDigests,
              "the items of a \(kind) differ from its pieces")
        next += itemDigests.count
    }
    check(next == actual.count, "JSON pieces give \(actual.count) documents, the whole file \(next)")
}
