@testable import Manifests
import Testing

private func yaml(_ s: String, file: String = "test.yaml") throws -> ManifestTree {
    try ManifestReader.parseYAML(Array(s.utf8), file: file)
}

private func json(_ s: String, file: String = "test.json") throws -> ManifestTree {
    try ManifestReader.parseJSON(Array(s.utf8), file: file)
}

/// Parses and returns the error, recording a failure if parsing succeeded.
private func syntaxError(_ parse: () throws(SyntaxError) -> ManifestTree) -> SyntaxError? {
    do {
        _ = try parse()
        Issue.record("expected a syntax error")
        return nil
    } catch {
        return error
    }
}

private func mark(_ line: Int, _ column: Int) -> SourceMark { SourceMark(line: line, column: column) }

@Suite struct ManifestTreeTests {
    @Test func multiDocumentYAMLWithMarks() throws {
        let source = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              labels: {app: web}
            ---
            # only a comment
            ---
            kind: ConfigMap
            data:
              - a
              - b
            ---
            null
            ...
            ---
            ~
            """
        let tree = try yaml(source)
        #expect(tree.documents.count == 2)
        #expect(tree.file == "test.yaml")

        let d0 = tree.documents[0]
        #expect(tree.kind(d0) == .mapping)
        #expect(tree.count(d0) == 3)
        #expect(tree.mark(d0) == mark(1, 1))
        let metadata = try #require(tree.value(d0, "metadata"))
        #expect(tree.mark(metadata) == mark(4, 3))
        let name = try #require(tree.value(metadata, "name"))
        #expect(tree.text(name) == "web")
        #expect(tree.mark(name) == mark(4, 9))
        let labels = try #require(tree.value(metadata, "labels"))
        #expect(tree.kind(labels) == .mapping)
        #expect(tree.mark(labels) == mark(5, 11))
        let app = try #require(tree.value(labels, "app"))
        #expect(tree.mark(app) == mark(5, 17))
        let firstKey = tree.entries(d0)[0].key
        #expect(tree.textEquals(firstKey, "apiVersion"))
        #expect(tree.mark(firstKey) == mark(1, 1))
        #expect(tree.value(d0, "missing") == nil)
        #expect(tree.value(name, "x") == nil)

        let d1 = tree.documents[1]
        #expect(tree.mark(d1) == mark(9, 1))
        let data = try #require(tree.value(d1, "data"))
        #expect(tree.kind(data) == .sequence)
        #expect(tree.mark(data) == mark(11, 3))
        #expect(tree.items(data).map { tree.text($0) } == ["a", "b"])
        #expect(tree.mark(tree.items(data)[1]) == mark(12, 5))
        #expect(tree.parent(tree.items(data)[1]) == data)
        #expect(tree.parent(data) == d1)
        #expect(tree.parent(d1) == nil)
    }

    @Test func emptyStreamHasNoDocuments() throws {
        #expect(try yaml("").documents.isEmpty)
        #expect(try yaml("# nothing\n").documents.isEmpty)
        #expect(try yaml("---\n---\n").documents.isEmpty)
        #expect(try json("").documents.isEmpty)
        #expect(try json("  \n ").documents.isEmpty)
    }

    @Test func scalarStylesKeepTextAndQuoting() throws {
        let tree = try yaml("""
            a: yes
            b: "0123"
            c: 0123
            d: null
            e: ~
            f: 'x'
            g: |
              line1
              line2
            h: >
              folded
              text
            i: !!str 80
            j:
            k: !!int 7
            l: ! 7
            m: !!int "8"
            "quoted key": 1
            """)
        let doc = try #require(tree.documents.first)
        func check(_ key: String, _ text: String, _ style: ScalarStyle, null: Bool = false,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            let n = try #require(tree.value(doc, key), sourceLocation: sourceLocation)
            #expect(tree.kind(n) == .scalar, sourceLocation: sourceLocation)
            #expect(tree.text(n) == text, sourceLocation: sourceLocation)
            #expect(tree.textEquals(n, text), sourceLocation: sourceLocation)
            #expect(tree.style(n) == style, sourceLocation: sourceLocation)
            #expect(tree.isNull(n) == null, sourceLocation: sourceLocation)
        }
        try check("a", "yes", .plain)
        try check("b", "0123", .quoted)
        try check("c", "0123", .plain)
        try check("d", "null", .plain, null: true)
        try check("e", "~", .plain, null: true)
        try check("f", "x", .quoted)
        try check("g", "line1\nline2\n", .quoted)
        try check("h", "folded text\n", .quoted)
        try check("i", "80", .quoted)
        try check("j", "", .plain, null: true)
        try check("k", "7", .plain)
        try check("l", "7", .quoted)
        try check("m", "8", .plain)
        try check("quoted key", "1", .plain)
        let b = try #require(tree.value(doc, "b"))
        #expect(!tree.textEquals(b, "123"))
        #expect(!tree.textEquals(b, "01234"))
        #expect(tree.withText(b) { Array($0) } == Array("0123".utf8))
        #expect(tree.count(b) == 0)
        #expect(tree.items(b).isEmpty)
        #expect(tree.entries(b).isEmpty)
    }

    @Test func duplicateKeyIsLocated() throws {
        let source = """
            metadata:
              name: a
              labels: {}
              name: b
            """
        let error = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array(source.utf8), file: "dup.yaml") })
        #expect(error.file == "dup.yaml")
        #expect(error.line == 4)
        #expect(error.column == 3)
        #expect(error.message == "duplicate key \"name\" in mapping (first at 2:3)")
        #expect(error.description == "dup.yaml:4:3: duplicate key \"name\" in mapping (first at 2:3)")
    }

    @Test func duplicateKeyInLargeMappingIsLocated() throws {
        var source = ""
        for i in 0 ..< 40 { source += "key\(i): \(i)\n" }
        source += "key17: again\n"
        let error = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array(source.utf8), file: "big.yaml") })
        #expect(error.line == 41)
        #expect(error.column == 1)
        #expect(error.message == "duplicate key \"key17\" in mapping (first at 18:1)")

        // Same keys in different mappings are fine.
        _ = try yaml("a: {x: 1}\nb: {x: 2}\n")
    }

    @Test func libyamlErrorIsLocated() throws {
        let source = """
            a:
              b: 1
             c: 2
            """
        let error = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array(source.utf8), file: "bad.yaml") })
        #expect(error.file == "bad.yaml")
        #expect(error.line == 3)
        #expect(error.column == 2)
        #expect(error.message.contains("did not find expected key"))

        let unterminated = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array("a: [1, 2\nb: 3\n".utf8), file: "x.yaml") })
        #expect(unterminated.line == 2)
        #expect(unterminated.column == 2)
        #expect(unterminated.message.hasPrefix("did not find expected ',' or ']'"))
        #expect(!unterminated.message.isEmpty)
    }

    @Test func nonScalarKeysAndBadAliasesAreRejected() throws {
        let complexKey = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array("? [a, b]\n: c\n".utf8), file: "k.yaml") })
        #expect(complexKey.message == "mapping keys must be scalars")
        #expect(complexKey.line == 1)
        #expect(complexKey.column == 3)

        let unknown = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array("a: *nope\n".utf8), file: "a.yaml") })
        #expect(unknown.message == "unknown anchor \"nope\"")
        #expect(unknown.line == 1 && unknown.column == 4)

        let recursive = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array("a: &x [1, *x]\n".utf8), file: "a.yaml") })
        #expect(recursive.message.contains("contains it"))
    }

    @Test func aliasIsExpandedAsACopy() throws {
        let tree = try yaml("""
            base: &b
              x: 1
              y: [a, b]
            use: *b
            scalar: &s hello
            again: *s
            """)
        let doc = try #require(tree.documents.first)
        let base = try #require(tree.value(doc, "base"))
        let use = try #require(tree.value(doc, "use"))
        #expect(use != base)
        #expect(tree.kind(use) == .mapping)
        #expect(tree.count(use) == 2)
        #expect(tree.mark(use) == mark(4, 6))
        let x = try #require(tree.value(use, "x"))
        #expect(tree.text(x) == "1")
        #expect(tree.mark(x) == mark(2, 6))
        #expect(tree.parent(x) == use)
        let y = try #require(tree.value(use, "y"))
        #expect(tree.items(y).map { tree.text($0) } == ["a", "b"])
        #expect(tree.parent(tree.items(y)[0]) == y)
        #expect(tree.canonicalDigest(use) == tree.canonicalDigest(base))
        #expect(tree.node(atPath: tree.path(tree.items(y)[1])) == tree.items(y)[1])
        let again = try #require(tree.value(doc, "again"))
        #expect(tree.text(again) == "hello")
        #expect(tree.mark(again) == mark(6, 8))
    }

    @Test func mergeKeyExplicitKeysWin() throws {
        let tree = try yaml("""
            base: &b {x: 1, y: 2}
            other: &o {y: 3, z: 4}
            merged:
              <<: [*b, *o]
              x: 9
            """)
        let doc = try #require(tree.documents.first)
        let merged = try #require(tree.value(doc, "merged"))
        #expect(tree.entries(merged).map { tree.text($0.key) } == ["y", "z", "x"])
        #expect(tree.text(try #require(tree.value(merged, "x"))) == "9")
        #expect(tree.text(try #require(tree.value(merged, "y"))) == "2")
        #expect(tree.text(try #require(tree.value(merged, "z"))) == "4")
        #expect(tree.value(merged, "<<") == nil)
        for (k, v) in tree.entries(merged) {
            #expect(tree.parent(k) == merged)
            #expect(tree.parent(v) == merged)
            #expect(tree.node(atPath: tree.path(v)) == v)
        }
        // A quoted "<<" is an ordinary key.
        let quoted = try yaml("\"<<\": {a: 1}\n")
        let quotedDoc = try #require(quoted.documents.first)
        let quotedValue = try #require(quoted.value(quotedDoc, "<<"))
        #expect(quoted.kind(quotedValue) == .mapping)
    }

    @Test func billionLaughsIsBounded() throws {
        var source = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1 ..< 9 {
            let refs = Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ")
            source += "a\(i): &a\(i) [\(refs)]\n"
        }
        let error = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(Array(source.utf8), file: "lol.yaml") })
        #expect(error.message == "alias expansion too large")
    }

    @Test func jsonConcatenatedValuesAndStyles() throws {
        let tree = try json("""
            {"a": 1, "z": "s", "m": {"k": [true, false, null, 1.5, -7, 1e3, 9223372036854775807, "0123"]}}
            {"b": 2}

            [1, 2] 42 "str"null
            """)
        // The top-level null is not a document, as in YAML.
        #expect(tree.documents.count == 5)
        let d0 = tree.documents[0]
        #expect(tree.entries(d0).map { tree.text($0.key) } == ["a", "z", "m"])
        #expect(tree.style(tree.entries(d0)[0].key) == .jsonString)
        #expect(tree.mark(d0) == mark(0, 0))
        let m = try #require(tree.value(d0, "m"))
        let k = try #require(tree.value(m, "k"))
        let items = tree.items(k)
        #expect(items.map { tree.style($0) } == [.jsonTrue, .jsonFalse, .jsonNull, .jsonReal, .jsonInteger, .jsonReal, .jsonInteger, .jsonString])
        #expect(items.map { tree.text($0) } == ["true", "false", "null", "1.5", "-7", "1000.0", "9223372036854775807", "0123"])
        #expect(tree.isNull(items[2]))
        #expect(!tree.isNull(items[7]))
        #expect(tree.text(try #require(tree.value(tree.documents[1], "b"))) == "2")
        #expect(tree.kind(tree.documents[2]) == .sequence)
        #expect(tree.text(tree.documents[3]) == "42")
        #expect(tree.style(tree.documents[4]) == .jsonString)
    }

    @Test func jsonDuplicateKeyIsRejected() throws {
        let error = try #require(syntaxError { () throws(SyntaxError) in
            try ManifestReader.parseJSON(Array("{\"a\": 1}\n{\"x\": {\"a\": 1, \"a\": 2}}".utf8), file: "d.json")
        })
        #expect(error.file == "d.json")
        #expect(error.message.contains("duplicate"))
        #expect(error.line == 2)
    }

    @Test func jsonSyntaxErrorIsLocatedInWholeFile() throws {
        let first = try #require(syntaxError { () throws(SyntaxError) in
            try ManifestReader.parseJSON(Array("{\"a\": [1,\n  2,,\n]}".utf8), file: "e.json")
        })
        #expect(first.line == 2)
        #expect(first.column == 5)
        #expect(first.description.hasPrefix("e.json:2:5: "))

        // In a later value, the position is relative to the file, not to that value.
        let later = try #require(syntaxError { () throws(SyntaxError) in
            try ManifestReader.parseJSON(Array("{\"a\": 1}\n\n   {\"b\": x}".utf8), file: "e.json")
        })
        #expect(later.line == 3)
        #expect(later.column == 10)
        #expect(later.message.contains("invalid token"))

        let sameLine = try #require(syntaxError { () throws(SyntaxError) in
            try ManifestReader.parseJSON(Array("{} {\"b\": x}".utf8), file: "e.json")
        })
        #expect(sameLine.line == 1)
        #expect(sameLine.column == 10)
    }

    @Test func parseChoosesFormat() throws {
        let j = try ManifestReader.parse(Array("{\"a\": 1}".utf8), file: "x.json")
        #expect(tree(j, "a", hasStyle: .jsonInteger))
        let y = try ManifestReader.parse(Array("a: 1".utf8), file: "x.yml")
        #expect(tree(y, "a", hasStyle: .plain))
        let sniffedJSON = try ManifestReader.parse(Array("  \n[{\"a\": 1}]".utf8), file: "-")
        #expect(sniffedJSON.kind(sniffedJSON.items(sniffedJSON.documents[0])[0]) == .mapping)
        #expect(sniffedJSON.mark(sniffedJSON.documents[0]).line == 0)
        let sniffedYAML = try ManifestReader.parse(Array("a: 1".utf8), file: "stdin")
        #expect(tree(sniffedYAML, "a", hasStyle: .plain))
        #expect(ManifestReader.isJSON(Array("\n\t [1]".utf8), file: "-"))
        #expect(!ManifestReader.isJSON(Array("[1]".utf8), file: "list.YAML"))
        #expect(ManifestReader.isJSON(Array("a: 1".utf8), file: "x.Json"))
        #expect(!ManifestReader.isJSON(Array("  ".utf8), file: "stdin"))
        // YAML flow syntax in a .yaml file stays YAML (keeps marks).
        let flowYAML = try ManifestReader.parse(Array("{a: 1}".utf8), file: "f.yaml")
        #expect(flowYAML.mark(flowYAML.documents[0]) == mark(1, 1))
    }

    private func tree(_ t: ManifestTree, _ key: String, hasStyle style: ScalarStyle) -> Bool {
        guard let doc = t.documents.first, let v = t.value(doc, key) else { return false }
        return t.style(v) == style
    }

    @Test func pathRoundTripsAcrossParses() throws {
        let source = """
            a: 1
            ---
            kind: X
            spec:
              list:
                - {p: 1, q: [x, y]}
                - z
            """
        let first = try yaml(source)
        let second = try yaml(source)
        var visited = 0
        var stack = first.documents
        while let n = stack.popLast() {
            visited += 1
            let path = first.path(n)
            #expect(path.first.map { first.documents.indices.contains($0) } == true)
            #expect(first.node(atPath: path) == n)
            let other = try #require(second.node(atPath: path))
            #expect(second.kind(other) == first.kind(n))
            #expect(second.text(other) == first.text(n))
            #expect(second.mark(other) == first.mark(n))
            switch first.kind(n) {
            case .scalar: break
            case .sequence: stack.append(contentsOf: first.items(n))
            case .mapping:
                for (k, v) in first.entries(n) { stack.append(k); stack.append(v) }
            }
        }
        #expect(visited == 18)
        let q = try #require(first.node(atPath: [1, 3, 1, 0, 3]))
        #expect(first.items(q).map { first.text($0) } == ["x", "y"])
        #expect(first.node(atPath: [2]) == nil)
        #expect(first.node(atPath: [1, 99]) == nil)
        #expect(first.node(atPath: [0, 1, 0]) == nil)
        #expect(first.node(atPath: []) == nil)
    }

    /// JSON is valid YAML; a node found by jansson must be found again by its path in libyaml's
    /// parse of the same bytes (that is how JSON diagnostics get line numbers).
    @Test func jsonPathsAgreeWithYAMLParseOfSameBytes() throws {
        let source = """
            {
              "kind": "EndpointSlice", "zeta": 1, "alpha": {"z": [1, {"b": null, "a": "0123"}], "y": true},
              "metadata": {"name": "web", "labels": {"k2": "v", "k1": "w"}},
              "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]
            }
            """
        let j = try json(source)
        let y = try yaml(source)
        #expect(j.documents.count == 1 && y.documents.count == 1)
        var stack = j.documents
        var visited = 0
        while let n = stack.popLast() {
            visited += 1
            let other = try #require(y.node(atPath: j.path(n)))
            #expect(y.kind(other) == j.kind(n))
            #expect(y.text(other) == j.text(n))
            #expect(y.canonicalDigest(other) == j.canonicalDigest(n))
            switch j.kind(n) {
            case .scalar: break
            case .sequence: stack.append(contentsOf: j.items(n))
            case .mapping: for (k, v) in j.entries(n) { stack.append(k); stack.append(v) }
            }
        }
        #expect(visited == 37)
        let a = try #require(y.node(atPath: [0, 5, 1, 1, 3]))
        #expect(y.text(a) == "0123")
        #expect(y.mark(a) == mark(2, 75))
        #expect(j.mark(try #require(j.node(atPath: [0, 5, 1, 1, 3]))) == mark(0, 0))
    }

    @Test func canonicalDigestMatchesAcrossFormats() throws {
        let y = try yaml("""
            kind: Service
            spec:
              ports:
              - port: 80
                name: "http"
                enabled: true
                weight: 1.5
                scale: 1e3
                extra: null
                empty:
                note: plain text
              selector: {app: web}
            """)
        let j = try json("""
            {"spec": {"selector": {"app": "web"},
                      "ports": [{"weight": 1.5, "name": "http", "note": "plain text", "port": 80,
                                 "extra": null, "empty": null, "scale": 1000.0, "enabled": true}]},
             "kind": "Service"}
            """)
        let yd = y.canonicalDigest(y.documents[0])
        #expect(yd.count == 32)
        #expect(yd == j.canonicalDigest(j.documents[0]))

        let changed = try json("""
            {"spec": {"selector": {"app": "web"},
                      "ports": [{"weight": 1.5, "name": "http", "note": "plain text", "port": 81,
                                 "extra": null, "empty": null, "scale": 1000.0, "enabled": true}]},
             "kind": "Service"}
            """)
        #expect(yd != changed.canonicalDigest(changed.documents[0]))

        // The type matters, not just the text.
        func digest(_ s: String) throws -> [UInt8] {
            let t = try yaml(s)
            return t.canonicalDigest(t.documents[0])
        }
        func jdigest(_ s: String) throws -> [UInt8] {
            let t = try json(s)
            return t.canonicalDigest(t.documents[0])
        }
        #expect(try digest("a: 80") == jdigest("{\"a\": 80}"))
        #expect(try digest("a: \"80\"") == jdigest("{\"a\": \"80\"}"))
        #expect(try digest("a: \"80\"") != digest("a: 80"))
        #expect(try digest("a: 0123") == jdigest("{\"a\": \"0123\"}"))
        #expect(try digest("a: yes") == jdigest("{\"a\": \"yes\"}"))
        #expect(try digest("a: ~") == jdigest("{\"a\": null}"))
        #expect(try digest("a: 'null'") != jdigest("{\"a\": null}"))
        #expect(try digest("a: false") == jdigest("{\"a\": false}"))
        #expect(try digest("a: [1, 2]") != digest("a: [2, 1]"))
        #expect(try digest("a: {}") != digest("a: []"))
        #expect(try digest("{a: 1, b: 2}") == digest("{b: 2, a: 1}"))
        // Structure boundaries are part of the serialisation.
        #expect(try digest("[ab, c]") != digest("[a, bc]"))
        // A large scalar takes the direct-to-hasher path and still matches.
        let long = String(repeating: "x", count: 100_000)
        #expect(try digest("a: \(long)") == jdigest("{\"a\": \"\(long)\"}"))
    }

    @Test func largeAndDeepInputsUseTheExplicitStack() throws {
        var source = "items:\n"
        for i in 0 ..< 20_000 {
            source += "- name: item-\(i)\n  port: \(i)\n"
        }
        let tree = try yaml(source)
        let root = try #require(tree.documents.first)
        let items = try #require(tree.value(root, "items"))
        #expect(tree.count(items) == 20_000)
        let last = tree.items(items)[19_999]
        #expect(tree.text(try #require(tree.value(last, "name"))) == "item-19999")
        #expect(tree.mark(last) == mark(40_000, 3))
        #expect(tree.path(last) == [0, 1, 19_999])
        // Repeated keys share their bytes in the arena: only the values' text should remain.
        #expect(tree.text.count <= 20_000 * 16)
        for (i, item) in tree.items(items).enumerated() where i % 997 == 0 {
            #expect(tree.entries(item).map { tree.text($0.key) } == ["name", "port"])
            #expect(tree.text(try #require(tree.value(item, "port"))) == "\(i)")
        }

        let depth = TreeBuilder.maxDepth
        let deep = try yaml(String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth))
        var n = try #require(deep.documents.first)
        var levels = 0
        while deep.kind(n) == .sequence {
            n = deep.items(n)[0]
            levels += 1
        }
        #expect(levels == depth)
        #expect(deep.text(n) == "x")
        #expect(deep.path(n).count == depth + 1)
        let a = deep.canonicalDigest(try #require(deep.documents.first))
        let deepJSON = try json(String(repeating: "[", count: 1_000) + "\"x\"" + String(repeating: "]", count: 1_000))
        let b = try yaml(String(repeating: "[", count: 1_000) + "x" + String(repeating: "]", count: 1_000))
        #expect(deepJSON.canonicalDigest(deepJSON.documents[0]) == b.canonicalDigest(b.documents[0]))
        #expect(a.count == 32)
    }

    @Test func syntaxErrorDescriptionOmitsUnknownPosition() {
        #expect(SyntaxError(file: "f.json", line: 0, column: 0, message: "boom").description == "f.json: boom")
        #expect(SyntaxError(file: "f.yaml", line: 3, column: 7, message: "boom").description == "f.yaml:3:7: boom")
    }

    @Test func invalidUTF8IsLocated() throws {
        let bytes = Array("a: 1\nb: ".utf8) + [0xFF, 0xFE, 0x41] + Array("\n".utf8)
        let error = try #require(syntaxError { () throws(SyntaxError) in try ManifestReader.parseYAML(bytes, file: "u.yaml") })
        #expect(error.line == 2)
        #expect(error.column == 4)
    }
}
