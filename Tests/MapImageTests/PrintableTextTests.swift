import Foundation
import MapImage
import Testing

/// Strings an image author controls, each trying to end a line, forge a record, or take over
/// the terminal.
enum Hostile {
    static let node = "node-a\nNODE 0xdeadbeef forged zone=- ipv4=6.6.6.6 ipv6=-"
    static let node2 = "node-b\u{1b}[2J\u{1b}]0;owned\u{07}\r"
    static let zone = "z1\u{0}\u{7f}\u{9b}31m\u{85}"
    static let namespace = "kube-system\u{2028}"
    static let name = "kube-dns\u{202e}gnp.exe"
    static let owner = "kube-system/kube-dns\nFRONTEND 1.2.3.4:80/TCP id=0x00000001"
    static let port = "dns\t\\n"
    static let compiler = "balancer 0.1.0\n# tables: forged"

    /// sampleContents with every metadata string replaced by a hostile one.
    static func contents() -> ImageContents {
        var c = sampleContents()
        c.metadata.compiler = compiler
        c.metadata.inputs.digest = "\u{1b}[31m"
        c.metadata.counts = ["Service\nDIAGNOSTIC": 1]
        c.metadata.nodes[0].name = node
        c.metadata.nodes[0].zone = zone
        c.metadata.nodes[1].name = node2
        c.metadata.zones[0].name = zone
        c.metadata.services[0].namespace = namespace
        c.metadata.services[0].name = name
        for i in c.metadata.groups.indices {
            c.metadata.groups[i].ownerName = owner
            c.metadata.groups[i].portName = port
        }
        c.metadata.diagnostics = [DiagnosticInfo(severity: "warning\n", object: "Service a/b\u{85}", field: "spec\u{1b}",
                                                 message: "one\ntwo\r\nthree \\x1b\u{2029}")]
        return c
    }

    /// The same contents with plain names: the line structure hostile output must keep.
    static func plain() -> ImageContents {
        var c = sampleContents()
        c.metadata.inputs.digest = "d"
        c.metadata.counts = ["Service": 1]
        c.metadata.diagnostics = [DiagnosticInfo(severity: "warning", object: "Service a/b", field: "spec", message: "m")]
        return c
    }

    /// Whether a printed text holds a character that is not text (a raw control, separator or
    /// bidirectional control) anywhere but as the line ends.
    static func unsafeCharacters(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { $0 != "\n" && PrintableText.isUnsafe($0) }
    }
}

@Suite struct PrintableTextTests {
    @Test func escapes() {
        #expect(PrintableText.escape("kube-system/kube-dns:dns/UDP zone-ü ✓") == "kube-system/kube-dns:dns/UDP zone-ü ✓")
        #expect(PrintableText.escape("a\nb\rc\td") == "a\\nb\\rc\\td")
        #expect(PrintableText.escape("\u{1b}[31mred\u{0}\u{7}\u{7f}") == "\\x1b[31mred\\x00\\x07\\x7f")
        #expect(PrintableText.escape("\u{9b}2J\u{85}") == "\\u{9b}2J\\u{85}")
        #expect(PrintableText.escape("x\u{2028}y\u{2029}\u{202e}exe\u{2066}") == "x\\u{2028}y\\u{2029}\\u{202e}exe\\u{2066}")
        // A backslash is doubled: a string that spells an escape never prints like the character.
        #expect(PrintableText.escape("\\n") == "\\\\n")
        #expect(PrintableText.escape("\\n") != PrintableText.escape("\n"))
        #expect(PrintableText.escape("C:\\x1b") == "C:\\\\x1b")
    }

    /// JSON stays valid and means the same: only characters JSON writers leave raw are escaped.
    @Test func jsonStaysValidAndEqual() throws {
        let value = ["name": "a\u{7f}b\u{9b}c\u{2028}d\u{202e}e\n\u{1b}f\\ü"]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = String(decoding: try encoder.encode(value), as: UTF8.self)
        let escaped = PrintableText.escapeJSON(json)
        #expect(Hostile.unsafeCharacters(escaped).isEmpty)
        #expect(escaped.contains("\\u007f") && escaped.contains("\\u009b") && escaped.contains("\\u2028") && escaped.contains("\\u202e"))
        let back = try JSONDecoder().decode([String: String].self, from: Data(escaped.utf8))
        #expect(back == value)
        #expect(PrintableText.escapeJSON("{\n  \"a\": 1\n}") == "{\n  \"a\": 1\n}")
    }

    /// A forged image whose metadata carries newlines, terminal escapes, NUL, C1 controls, line
    /// separators and bidirectional overrides: `inspect` prints as many lines as for plain names,
    /// each the same record, and nothing that is not text.
    @Test func inspectOfAForgedImage() throws {
        let forged = try MapImage(bytes: ImageEncoder.encode(Hostile.contents()))
        let plain = try MapImage(bytes: ImageEncoder.encode(Hostile.plain()))
        let text = TextRenderer.render(forged)
        #expect(Hostile.unsafeCharacters(text).isEmpty)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let plainLines = TextRenderer.render(plain).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == plainLines.count)
        // Each line is the same kind of record as the plain image's line at that position.
        for (a, b) in zip(lines, plainLines) {
            #expect(a.split(separator: " ").first == b.split(separator: " ").first, "\(a)")
        }
        #expect(text.contains("NODE 0x11110001 node-a\\nNODE 0xdeadbeef forged zone=- ipv4=6.6.6.6 ipv6=- zone=z1\\x00\\x7f\\u{9b}31m\\u{85}"))
        #expect(text.contains("DIAGNOSTIC warning\\n Service a/b\\u{85} spec\\x1b: one\\ntwo\\r\\nthree \\\\x1b\\u{2029}"))
        #expect(!lines.contains { $0.hasPrefix("NODE 0xdeadbeef") || $0.hasPrefix("FRONTEND 1.2.3.4") || $0.hasPrefix("# tables: forged") })

        // JSON: valid, and the strings come back exactly as the image holds them.
        let json = JSONRenderer.render(forged)
        #expect(Hostile.unsafeCharacters(json).isEmpty)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let metadata = object?["metadata"] as? [String: Any]
        let nodes = metadata?["nodes"] as? [[String: Any]]
        #expect(nodes?.compactMap { $0["name"] as? String }.sorted() == [Hostile.node, Hostile.node2].sorted())
        #expect((metadata?["compiler"] as? String) == Hostile.compiler)
    }

    /// `diff` of a plain and a forged image: every line is a header, an entity or a change.
    @Test func diffOfAForgedImage() throws {
        let forged = try MapImage(bytes: ImageEncoder.encode(Hostile.contents()))
        let plain = try MapImage(bytes: ImageEncoder.encode(Hostile.plain()))
        let diff = ImageDiff(old: plain, new: forged)
        let text = diff.render()
        #expect(Hostile.unsafeCharacters(text).isEmpty)
        let lines = text.split(separator: "\n")
        let expected = 2 + diff.entities.reduce(0) { $0 + 1 + $1.added.count + $1.removed.count }
        #expect(lines.count == expected)
        for line in lines {
            let ok = line.hasPrefix("--- old sha256 ") || line.hasPrefix("+++ new sha256 ") || line.hasPrefix("+ ") || line.hasPrefix("- ")
                || line.hasPrefix("~ ") || line.hasPrefix("    + ") || line.hasPrefix("    - ")
            #expect(ok, "\(line)")
        }
        #expect(text.contains("+ node node-a\\nNODE 0xdeadbeef"))
    }

    /// Bytes that are not UTF-8 in a forged image's metadata (re-sealed with a fresh digest):
    /// the metadata is refused, with a one-line error that says so.
    @Test func invalidUTF8InMetadata() throws {
        var c = sampleContents()
        c.metadata.nodes[0].name = "@@INVALID@@"
        var bytes = ImageEncoder.encode(c)
        let marker = Array("@@INVALID@@".utf8)
        let bad: [UInt8] = [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0x41, 0xE2, 0x82, 0x42]
        #expect(bad.count == marker.count)
        let at = try #require((0...(bytes.count - marker.count)).first { Array(bytes[$0..<($0 + marker.count)]) == marker })
        bytes.replaceSubrange(at..<(at + marker.count), with: bad)
        #expect { try MapImage(bytes: resign(bytes)) } throws: { error in
            let text = "\(error)"
            return text.contains("metadata is not valid") && !text.contains("\n") && Hostile.unsafeCharacters(text).isEmpty
        }
    }

    /// Escapes of lone surrogates (no character) in a forged image's metadata JSON: refused
    /// like bytes that are not UTF-8.
    @Test func loneSurrogatesInMetadata() throws {
        var c = sampleContents()
        c.metadata.nodes[0].name = "@@@@@@@@@@@@"
        var bytes = ImageEncoder.encode(c)
        let marker = Array("@@@@@@@@@@@@".utf8)
        let forged = Array("\\udc00\\ud800".utf8)
        #expect(forged.count == marker.count)
        let at = try #require((0...(bytes.count - marker.count)).first { Array(bytes[$0..<($0 + marker.count)]) == marker })
        bytes.replaceSubrange(at..<(at + marker.count), with: forged)
        #expect { try MapImage(bytes: resign(bytes)) } throws: { "\($0)".contains("metadata is not valid") }
    }
}
