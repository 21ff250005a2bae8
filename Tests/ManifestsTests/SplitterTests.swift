@testable import Manifests
import Testing

@Suite struct SplitterTests {
    @Test func compactorKeepsStringsIntact() {
        let json = "{ \"a\" : \"x y\\\\\" ,\n  \"b\\\"c\": [ 1 ,\t2 ] }"
        let out = String(decoding: JSONCompactor.compact(Array(json.utf8)), as: UTF8.self)
        #expect(out == "{\"a\":\"x y\\\\\",\"b\\\"c\":[1,2]}")
    }

    /// Whitespace between two tokens that are not structural stays, so garbage cannot compact
    /// into valid JSON (`1 2` into `12`, `tr ue` into `true`).
    @Test func compactorNeverJoinsTokens() {
        func compact(_ s: String) -> String { String(decoding: JSONCompactor.compact(Array(s.utf8)), as: UTF8.self) }
        #expect(compact("{\n  \"a\": 1 2\n}") == "{\"a\":1 2}")
        #expect(compact("[ tr ue , \"x\" \"y\" ]") == "[tr ue,\"x\" \"y\"]")
        #expect(compact("{ \"a\" :\n [ 1 ,\n 2 ] }") == "{\"a\":[1,2]}")
    }

    @Test func listItemsAreSplitWithPositions() throws {
        let json = "{\n \"apiVersion\": \"v1\",\n \"items\": [\n  {\"metadata\": {\"name\": \"a\"}},\n  {\"metadata\": {\"name\": \"b\"}}\n ],\n \"kind\": \"ServiceList\"\n}\n"
        let all = ManifestSplitter.split(Array(json.utf8), file: "x.json", format: .json)
        // The envelope (the list's own members, its items cut out) comes first.
        #expect(all.count == 3)
        let envelope = try #require(all.first)
        #expect(!envelope.isListItem && envelope.range == 0..<json.utf8.count - 1)
        let interior = try #require(envelope.excluded)
        #expect(Array(json.utf8)[interior.lowerBound - 1] == UInt8(ascii: "[") && Array(json.utf8)[interior.upperBound] == UInt8(ascii: "]"))
        let chunks = Array(all.dropFirst())
        #expect(chunks.allSatisfy { $0.isListItem && $0.listKind == "Service" && $0.listAPIVersion == "v1" })
        #expect(chunks.map(\.line) == [4, 5])
        #expect(chunks.map(\.column) == [3, 3])
    }

    /// Findings of the splitter fuzzer (fuzz/): each piece must parse as the whole file does.
    @Test func fuzzerFindingsSplitAsTheWholeFileParses() throws {
        // A document end right after another closes nothing: no piece of `...` alone.
        let ends = ManifestSplitter.split(Array("a: 1\n...\n...\n# c\n...\nb: 2\n".utf8), file: "e.yaml", format: .yaml)
        #expect(ends.count == 2 && ends[0].range.upperBound == ends[1].range.lowerBound)
        for c in ends { _ = try ManifestReader.parseYAML(Array(Array("a: 1\n...\n...\n# c\n...\nb: 2\n".utf8)[c.range]), file: "e.yaml") }
        // A scalar runs into a string: two values.
        let json = Array("1\"a b\"".utf8)
        #expect(ManifestSplitter.split(json, file: "s.json", format: .json).map(\.range) == [0..<1, 1..<6])
        // A directive after a lone CR (a YAML line break) keeps the file whole.
        #expect(ManifestSplitter.split(Array("a: 1\r%TAG ! tag:x,2000:\n---\nb: 2\n".utf8), file: "d.yaml", format: .yaml).count == 1)
        // UTF-16: marker-like bytes mean nothing; whole.
        #expect(ManifestSplitter.split([0xFE, 0xFF, 0x0A, 0x2D, 0x2D, 0x2D, 0x0A, 0x61], file: "u.yaml", format: .yaml).count == 1)
        #expect(ManifestSplitter.split([0x61, 0x00, 0x0A, 0x00, 0x2D, 0x00, 0x2D, 0x00, 0x2D, 0x00, 0x0A, 0x00], file: "u.yaml", format: .yaml).count == 1)
    }

    @Test func yamlDocumentsSplitAtMarkersOnly() {
        let yaml = "a: 1\n---\nb: |\n  --- not a marker inside\n  text\n...\n---\nc: 3\n"
        let chunks = ManifestSplitter.split(Array(yaml.utf8), file: "x.yaml", format: .yaml)
        #expect(chunks.map(\.line) == [1, 2, 7])
        let bad = ManifestSplitter.split(Array("%YAML 1.2\n---\na: 1\n".utf8), file: "d.yaml", format: .yaml)
        #expect(bad.count == 1)
    }
}
