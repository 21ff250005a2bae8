@testable import Compiler
import Testing

@Suite struct IDTests {
    @Test func denseCollisionsAreSettledByIdentity() {
        // Everything hashes to 5: identities in order take 5, 6, 7.
        #expect(StableID.assignDense([30, 10, 20], hash: { _ in 5 }) == [7, 5, 6])
        // A collision's shifted id pushes the identity whose hash it lands on.
        #expect(StableID.assignDense([1, 2, 3], hash: { [1: 9, 2: 9, 3: 10][$0] ?? 0 }) == [9, 10, 11])
        // Hash 0 is reserved.
        #expect(StableID.assignDense([1], hash: { _ in 0 }) == [1])
        // Wrapping past the top probes from the hash for a free value.
        let ids = StableID.assignDense([1, 2, 3], hash: { _ in UInt32.max })
        #expect(ids[0] == UInt32.max)
        #expect(Set(ids).count == 3 && !ids.contains(0))
    }

    @Test func explicitIDsWinAndConflictsAreReported() {
        var conflicts: [(String, String, UInt32)] = []
        let ids = StableID.assign(["a", "b", "c"], explicit: ["b": 42, "c": 42], hash: { _ in 42 }) { conflicts.append(($0, $1, $2)) }
        #expect(ids["b"] == 42)
        #expect(ids["a"] != 42 && ids["c"] != 42 && ids["a"] != ids["c"])
        #expect(conflicts.count == 1 && conflicts[0].0 == "b" && conflicts[0].1 == "c")
    }

    @Test func hashIsFNV1aFolded() {
        // FNV-1a-64 of "" is the offset basis; folded: low ^ high.
        #expect(StableID.hash("") == (UInt32(0x8422_2325) ^ UInt32(0xcbf2_9ce4)))
        #expect(StableID.hash(words: 0) == StableID.hash([UInt8](repeating: 0, count: 8)))
    }
}

@Suite struct IDEdgeTests {
    @Test func emptyAndSingle() {
        #expect(StableID.assignDense([Int](), hash: { _ in 1 }).isEmpty)
        #expect(StableID.assignDense([7], hash: { _ in 3 }) == [3])
    }
}

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

@Suite struct AssignPositionsTests {
    @Test func explicitThenDense() {
        // c and a ask for 42; a (first in identity order) keeps it; b's hash is 42 too and steps over.
        var conflicts: [(Int, Int, UInt32)] = []
        let ids = StableID.assignPositions(["c", "a", "b"], hashes: [7, 9, 42], explicit: [0: 42, 1: 42]) { conflicts.append(($0, $1, $2)) }
        #expect(ids[1] == 42)
        #expect(conflicts.count == 1 && conflicts[0].0 == 1 && conflicts[0].1 == 0)
        #expect(ids[0] == 7)
        #expect(ids[2] == 43)
        #expect(Set(ids).count == 3)
    }

    @Test func wrapProbesForFreeValues() {
        let ids = StableID.assignPositions(["a", "b", "c"], hashes: [UInt32.max, UInt32.max, 1], explicit: [:])
        #expect(Set(ids).count == 3 && !ids.contains(0))
        #expect(ids[2] == 1)
    }
}
