@testable import Manifests
import Testing
import TestSupport

/// YAMLFastReader must build exactly libyaml's tree, marks included, or refuse and leave the
/// input to libyaml.
@Suite struct YAMLFastReaderTests {
    private func fast(_ bytes: [UInt8]) -> ManifestTree? {
        bytes.withUnsafeBufferPointer { YAMLFastReader.parse($0, file: "t.yaml") }
    }

    /// Returns whether the fast reader took it.
    @discardableResult
    private func agrees(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let libyaml = try? ManifestReader.parseYAMLWithLibyaml(bytes, file: "t.yaml")
        guard let f = fast(bytes) else { return false }
        guard let libyaml else {
            Issue.record("the fast reader accepted what libyaml refuses: \(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
            return true
        }
        #expect(treeDump(f) == treeDump(libyaml), sourceLocation: sourceLocation)
        #expect(f.documents.count == libyaml.documents.count, sourceLocation: sourceLocation)
        return true
    }

    @Test func acceptsWhatKubectlPrints() {
        let cases = [
            """
            ---
            apiVersion: v1
            kind: Service
            metadata:
              annotations:
                a.b/c: "x: y"
                empty: ""
                single: 'it''s'
              labels: {}
              name: web
            spec:
              clusterIP: 10.0.0.1
              ports:
              - name: http
                port: 80
                targetPort: "8080"
              -   name: dns
                  port: 53
              selector:
                app: web
              list:
                - a
                - "b\\tc\\u00e9\\x41\\U0001F600"
                - []
              x: http://example.com/a#b
            status:
              loadBalancer: {}

            """,
            "# a comment\nkind: List\nitems:\n- a\n\n# between\n- b\nafter: 1\n",
            "a:\n  b:\n    c: d\n  e: f\ng: h\n",
            "a:   spaced value  \nb: x\n",
            "a: |\n  text\nb: 1\n",
            "a:\n  b: |\n    {\"x\": 1, \"y\": \"#: -\"}\n      deeper\n\n    after a blank\n  c: |-\n    stripped\n\n  d: |+\n    kept\n\n\ne: 1\n",
            "l:\n- |\n  in a sequence\n- x\n",
        ]
        for c in cases {
            #expect(agrees(Array(c.utf8)), "\(c)")
        }
    }

    @Test func refusesWhatItLeavesToLibyaml() {
        let cases = [
            "a: >\n  text\n", "a: |2\n  x\n", "a: |\n\n  x\n", "a: | # c\n  x\n", "a: |\n  x", "a: |\nb: 1\n",
            "a: |\n  x\n   \n  y\n", "a: b\n  continued\n", "a: &x 1\nb: *x\n", "a: !!str 1\n",
            "a: [1, 2]\n", "a: {b: 1}\n", "a:\nb: 1\n", "a: b # comment\n", "a:\tb\n", "a: b\r\nc: d\r\n",
            "a: é\n", "a: 1\na: 2\n", "- a\n- b\n", "a: \"open\n  closed\"\n", "a: b: c\n", "a: 1\n- b\n",
            "%YAML 1.2\n---\na: 1\n", "a: 1\n---\nb: 2\n", "a: 1\n...\n", "", "# only a comment\n", "---\n",
            "  a: 1\n", "a:\n  - b\n c: 1\n", "\"a\":b\n", "a: -1\n", "? a\n: b\n", "a: \"\\N\"\n",
            "a: \"\\ud800\"\n", "a:\n- b\n  c: 1\n",
        ]
        for c in cases {
            #expect(fast(Array(c.utf8)) == nil, "\(c)")
        }
    }

    /// Every YAML file of the fixtures, whole and as its documents.
    @Test func fixturesReadAlike() throws {
        let root = Repo.fixtures
        var taken = 0
        for case_ in Repo.fixtureCases {
            let dir = root + "/" + case_
            for f in try InputLoader.expand([dir]) where f.hasSuffix(".yaml") || f.hasSuffix(".yml") {
                let bytes = try InputLoader.readFile(f)
                if agrees(bytes) { taken += 1 }
                for chunk in ManifestSplitter.split(bytes, file: f, format: .yaml) {
                    if agrees(Array(bytes[chunk.range])) { taken += 1 }
                }
            }
        }
        #expect(taken > 0)
    }
}
