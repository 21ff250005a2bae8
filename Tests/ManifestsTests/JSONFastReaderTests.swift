import FoundationEssentials
@testable import Manifests
import Testing
import TestSupport

/// Every node as text: kind, style, scalar bytes, children in order.
func treeDump(_ t: ManifestTree) -> [String] {
    var out: [String] = []
    func walk(_ n: NodeID, _ depth: Int) {
        let pad = String(repeating: " ", count: depth)
        switch t.kind(n) {
        case .scalar: out.append("\(pad)\(t.mark(n)) \(t.style(n)) \(Array(t.bytes(n)))")
        case .sequence:
            out.append("\(pad)\(t.mark(n)) [\(t.count(n))")
            for c in t.items(n) { walk(c, depth + 1) }
        case .mapping:
            out.append("\(pad)\(t.mark(n)) {\(t.count(n))")
            for (k, v) in t.entries(n) { walk(k, depth + 1); walk(v, depth + 1) }
        }
    }
    for d in t.documents { walk(d, 0) }
    return out
}

/// JSONFastReader must build exactly jansson's tree, or refuse and leave the input to jansson.
@Suite struct JSONFastReaderTests {
    private func fast(_ bytes: [UInt8]) -> ManifestTree? {
        bytes.withUnsafeBufferPointer { JSONFastReader.parse($0, file: "t.json") }
    }

    /// The fast tree equals jansson's (and marks are unknown in both), or the fast reader refused.
    /// Returns whether the fast reader took it.
    @discardableResult
    private func agrees(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let jansson = try? ManifestReader.parseJSONWithJansson(bytes, file: "t.json")
        guard let f = fast(bytes) else { return false }
        guard let jansson else {
            Issue.record("the fast reader accepted what jansson refuses: \(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
            return true
        }
        #expect(treeDump(f) == treeDump(jansson), sourceLocation: sourceLocation)
        #expect(f.documents.count == jansson.documents.count, sourceLocation: sourceLocation)
        return true
    }

    @Test func acceptsWhatKubernetesWrites() {
        let cases = [
            #"{"kind":"Service","metadata":{"name":"a","labels":{}},"spec":{"ports":[{"port":80,"targetPort":"http"}],"x":[]}}"#,
            "{\n    \"a\": [\n        1,\n        -2,\n        0,\n        true,\n        false,\n        null\n    ]\n}\n",
            #"[{"a":"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"}, "é€😀", 9223372036854775807, -9223372036854775808]"#,
            #"{"v":"\u0000 in a value"}"#,
            "\r\n\t {\"k\":\"v\"} \n",
        ]
        for c in cases {
            #expect(agrees(Array(c.utf8)), "\(c)")
        }
    }

    @Test func refusesWhatItLeavesToJansson() {
        let cases = [
            #"{"a":1.5}"#, #"{"a":1e3}"#, #"{"a":-0}"#, #"{"a":01}"#, #"{"a":9223372036854775808}"#,
            #"{"a":-9223372036854775809}"#, #"{"a":1,"a":2}"#, #"{"\u0000":1}"#, #"{"a":"\ud800"}"#,
            #"{"a":"\udc00"}"#, #"{"a":"\ud800\u0041"}"#, #"{"a":"\x"}"#, "{\"a\":\"\u{1}\"}", #"{"a":1,}"#,
            #"[1,]"#, #"{"a" 1}"#, #"{a:1}"#, #"{"a":tru}"#, #"{"a":truex}"#, #"{"a":1} {"b":2}"#, #"1"#,
            #""s""#, "", "   ", #"{"a":1"#, #"{"a":"b}"#, #"{"a":- 1}"#, #"{"a":+1}"#,
            "\u{FEFF}{\"a\":1}",
        ]
        for c in cases {
            #expect(fast(Array(c.utf8)) == nil, "\(c)")
        }
        // Ill-formed UTF-8: a stray continuation byte, an overlong form, an encoded surrogate,
        // beyond U+10FFFF, a truncated sequence.
        for bad: [UInt8] in [[0x80], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            let bytes = Array(#"{"a":""#.utf8) + bad + Array(#""}"#.utf8)
            #expect(fast(bytes) == nil, "\(bad)")
            #expect((try? ManifestReader.parseJSONWithJansson(bytes, file: "t.json")) == nil)
        }
        // Deeper than the arena allows: jansson parses it, the arena refuses; the same either way.
        let deep = Array((String(repeating: "[", count: 1001) + String(repeating: "]", count: 1001)).utf8)
        #expect(fast(deep) == nil)
    }

    /// Every JSON file of the fixtures, whole and as its List items.
    @Test func fixturesReadAlike() throws {
        let root = Repo.fixtures
        let files = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.hasSuffix(".json") }.sorted()
        #expect(!files.isEmpty)
        var taken = 0
        for f in files {
            let bytes = try InputLoader.readFile(root + "/" + f)
            if agrees(bytes) { taken += 1 }
            for chunk in ManifestSplitter.split(bytes, file: f, format: .json) where chunk.excluded == nil {
                agrees(Array(bytes[chunk.range]))
            }
        }
        #expect(taken > 0)
    }
}
